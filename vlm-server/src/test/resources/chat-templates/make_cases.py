"""Reference renderings of chat templates, for ChatTemplateTest.

Renders every template in this directory (and vlm4j's fallback template) over a set of conversations with
Python's Jinja2, set up the way transformers' apply_chat_template sets it up: a sandboxed environment with
trim_blocks and lstrip_blocks, the loopcontrols extension, a {% generation %} block that renders its body,
and a raise_exception global whose message becomes the error. Writes cases.json: one entry per
(template, conversation) with the expected prompt text or the expected error message.

The templates are the chat templates shipped by llava-hf/llava-1.5-7b-hf and llava-hf/llava-v1.6-mistral-7b-hf
(chat_template.json), meta-llama/Llama-2-7b-chat-hf, Meta-Llama-3-8B-Instruct, Mixtral-8x7B-Instruct-v0.1 and
Qwen2-VL-2B-Instruct (tokenizer_config.json's chat_template).

Run: python3 make_cases.py  (Jinja2 3.1.6 made the committed file)
"""
import json
import pathlib

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).parent
FALLBACK = HERE.parents[2] / "main/resources/dev/vlm4j/server/openai/llava-1.5-fallback.jinja"
TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}


class Generation(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


class Raised(Exception):
    pass


def raise_exception(message):
    raise Raised(message)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.globals["raise_exception"] = raise_exception
    return env


def text(t):
    return {"type": "text", "text": t}


IMAGE = {"type": "image"}

STRING_CONVERSATIONS = {
    "one user turn": [{"role": "user", "content": "What is in the picture?"}],
    "system and three turns": [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": "  Describe the image.\n"},
        {"role": "assistant", "content": " A cat on a mat. "},
        {"role": "user", "content": "What colour is it?"},
    ],
    "image placeholder line": [{"role": "user", "content": "<image>\nWhat is shown here?"}],
    "two user turns in a row": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
}

PARTS_CONVERSATIONS = {
    "image then text": [{"role": "user", "content": [IMAGE, text("What is in the picture?")]}],
    "system and three turns": [
        {"role": "system", "content": [text("You are a careful assistant.")]},
        {"role": "user", "content": [text("Describe this."), IMAGE]},
        {"role": "assistant", "content": [text("A cat on a mat.")]},
        {"role": "user", "content": [text("What colour is it?")]},
    ],
    "text only": [{"role": "user", "content": [text("Hello"), text("there")]}],
    "a tool turn": [{"role": "tool", "content": [text("42")]}],
}

TEMPLATES = {
    "llava-1.5-7b-hf.jinja": PARTS_CONVERSATIONS,
    "llava-v1.6-mistral-7b-hf.jinja": PARTS_CONVERSATIONS,
    "qwen2-vl-2b-instruct.jinja": {**PARTS_CONVERSATIONS, "string content": STRING_CONVERSATIONS["system and three turns"]},
    "llama-2-7b-chat-hf.jinja": STRING_CONVERSATIONS,
    "llama-3-8b-instruct.jinja": STRING_CONVERSATIONS,
    "mixtral-8x7b-instruct.jinja": STRING_CONVERSATIONS,
    "fallback": STRING_CONVERSATIONS,
    "python-string-methods.jinja": {"string methods": [
        {"role": "user", "content": "  x hello wORLD, good-bye x  "},
        {"role": "user", "content": "abc,def,,ghi"},
        {"role": "user", "content": "\t one\n two  three "},
    ]},
}


def main():
    env = environment()
    cases = []
    for name, conversations in TEMPLATES.items():
        source = (FALLBACK if name == "fallback" else HERE / name).read_text()
        template = env.from_string(source)
        for title, messages in conversations.items():
            for add_generation_prompt in (True, False):
                case = {"template": name, "title": title, "add_generation_prompt": add_generation_prompt,
                        "messages": messages}
                try:
                    case["expected"] = template.render(messages=messages, add_generation_prompt=add_generation_prompt, **TOKENS)
                except Raised as e:
                    case["error"] = str(e)
                cases.append(case)
    (HERE / "cases.json").write_text(json.dumps({"jinja2": jinja2.__version__, "tokens": TOKENS, "cases": cases}, indent=1) + "\n")
    print(len(cases), "cases")


if __name__ == "__main__":
    main()
