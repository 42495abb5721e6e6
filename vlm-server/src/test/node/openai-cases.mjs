// Drives a running `vlm serve` with the official OpenAI JavaScript client and prints what each case got back,
// as one JSON object on stdout, for OpenAiClientTest to check. Settings come from the environment:
// VLM_BASE_URL (http://127.0.0.1:PORT/v1), VLM_API_KEY, VLM_MODEL, VLM_IMAGE (a PNG file), VLM_STOP (a stop string).
import OpenAI from 'openai';
import { readFileSync } from 'node:fs';

const { VLM_BASE_URL: baseURL, VLM_API_KEY: apiKey, VLM_MODEL: model, VLM_IMAGE: image, VLM_STOP: stop } = process.env;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });
const imageUrl = 'data:image/png;base64,' + readFileSync(image).toString('base64');
const question = 'What is the content of this image?';
const withImage = (text, url = imageUrl) => [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text }] }];

const chat = (body) => client.chat.completions.create({ model, max_tokens: 12, temperature: 0, ...body });

function choices(completion) {
  return completion.choices.map(c => ({ index: c.index, text: c.message?.content ?? c.text, finish_reason: c.finish_reason, stop_reason: c.stop_reason }));
}

const cases = {
  async models() {
    const page = await client.models.list();
    return { ids: page.data.map(m => m.id) };
  },
  async chatWithImage() {
    const r = await chat({ messages: withImage(question) });
    return { object: r.object, role: r.choices[0].message.role, choices: choices(r), usage: r.usage };
  },
  async chatStream() {
    const stream = await chat({ messages: withImage(question), stream: true, stream_options: { include_usage: true }, logprobs: true, top_logprobs: 2 });
    const out = { chunks: 0, roles: [], text: '', finish_reasons: [], usage: null, logprobs: [] };
    for await (const chunk of stream) {
      out.chunks++;
      for (const c of chunk.choices) {
        if (c.delta.role) out.roles.push(c.delta.role);
        if (c.delta.content) out.text += c.delta.content;
        if (c.finish_reason) out.finish_reasons.push(c.finish_reason);
        if (c.logprobs?.content) out.logprobs.push(...c.logprobs.content);
      }
      if (chunk.usage) out.usage = chunk.usage;
    }
    return out;
  },
  async chatLogprobs() {
    const r = await chat({ messages: withImage(question), logprobs: true, top_logprobs: 5 });
    return { choices: choices(r), logprobs: r.choices[0].logprobs.content };
  },
  async completionLogprobs() {
    const r = await client.completions.create({ model, prompt: '<image>\nUSER: ' + question + '\nASSISTANT:', max_tokens: 12, temperature: 0,
      logprobs: 3, multi_modal_data: { image: imageUrl } });
    return { choices: choices(r), logprobs: r.choices[0].logprobs };
  },
  async promptLogprobs() {
    const r = await client.completions.create({ model, prompt: '<image>\nUSER: ' + question + '\nASSISTANT:', max_tokens: 1, temperature: 0,
      prompt_logprobs: 0, multi_modal_data: { image: imageUrl } });
    return { prompt_logprobs: r.choices[0].prompt_logprobs };
  },
  async completionWithImage() {
    const r = await client.completions.create({ model, prompt: '<image>\nUSER: ' + question + '\nASSISTANT:', max_tokens: 12, temperature: 0,
      multi_modal_data: { image: imageUrl } });
    return { object: r.object, choices: choices(r), usage: r.usage };
  },
  async nTwo() {
    const r = await chat({ messages: withImage(question), n: 2, temperature: 1, seed: 7, max_tokens: 8, ignore_eos: true });
    return { choices: choices(r), usage: r.usage };
  },
  async stopString() {
    const r = await chat({ messages: withImage(question), stop: [stop] });
    return { choices: choices(r) };
  },
  async invalidImage() {
    await chat({ messages: withImage(question, 'data:image/png;base64,' + Buffer.from('this is not an image').toString('base64')) });
    return {};
  },
  async imageTokenAndImagePart() {
    await chat({ messages: withImage('<image>\n' + question) });
    return {};
  },
  async imageTokenWithoutImage() {
    await chat({ messages: [{ role: 'user', content: '<image>\n' + question }] });
    return {};
  },
  async unknownModel() {
    await chat({ model: 'gpt-4o', messages: withImage(question) });
    return {};
  },
  async badKey() {
    const stranger = new OpenAI({ baseURL, apiKey: 'not-the-key', maxRetries: 0 });
    await stranger.chat.completions.create({ model, messages: withImage(question), max_tokens: 1 });
    return {};
  },
};

const results = {};
for (const [name, run] of Object.entries(cases)) {
  try {
    results[name] = { ok: true, ...(await run()) };
  } catch (e) {
    if (!(e instanceof OpenAI.APIError)) throw e;
    results[name] = { ok: false, status: e.status, message: e.message, type: e.type, error: e.error };
  }
}
console.log(JSON.stringify(results));
