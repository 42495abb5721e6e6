package dev.vlm4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.testing.Testdata;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.StreamSupport;

/** Reads the HF-made fixtures under {@code vlm4j.testdata} (see tools/make_fixtures.py). */
final class Fixtures {

    /** One string of testdata/tokenizer_cases.json, as HF tokenizers 0.23.2 encoded and decoded it. */
    record TokenizerCase(String text, int[] ids, List<String> tokens, String decodedSkipSpecial, String decodedWithSpecial) {
        @Override
        public String toString() {
            return text.length() > 40 ? text.substring(0, 40) + "…" : text;
        }
    }

    /** One entry of references/&lt;checkpoint&gt;/cases.json: HF's prompt ids and transformers' greedy continuation. */
    record GenerationCase(String checkpoint, String photo, String prompt, int[] promptTokenIds, int[] greedyTokenIds) {
        @Override
        public String toString() {
            return checkpoint + "/" + photo;
        }
    }

    /** {@code @MethodSource} names of {@link #tokenizerCases()} and {@link #generationCases()}. */
    static final String TOKENIZER_CASES = "dev.vlm4j.tokenizer.Fixtures#tokenizerCases";
    static final String GENERATION_CASES = "dev.vlm4j.tokenizer.Fixtures#generationCases";

    static final ObjectMapper JSON = new ObjectMapper();

    private Fixtures() {}

    static List<TokenizerCase> tokenizerCases() {
        List<TokenizerCase> cases = new ArrayList<>();
        for (JsonNode c : Testdata.json(Testdata.root().resolve("tokenizer_cases.json"))) {
            cases.add(new TokenizerCase(c.get("text").asText(), Testdata.ints(c.get("ids")),
                    StreamSupport.stream(c.get("tokens").spliterator(), false).map(JsonNode::asText).toList(),
                    c.get("decoded_skip_special").asText(), c.get("decoded_with_special").asText()));
        }
        return cases;
    }

    static TokenizerCase tokenizerCase(String text) {
        return tokenizerCases().stream().filter(c -> c.text().equals(text)).findFirst().orElseThrow();
    }

    static List<GenerationCase> generationCases() {
        List<GenerationCase> cases = new ArrayList<>();
        for (String checkpoint : List.of("llava-tiny", "llava-tiny-gqa")) {
            for (JsonNode c : Testdata.json(Testdata.root().resolve("references").resolve(checkpoint).resolve("cases.json"))) {
                cases.add(new GenerationCase(checkpoint, c.get("photo").asText(), c.get("prompt").asText(),
                        Testdata.ints(c.get("prompt_token_ids")), Testdata.ints(c.get("greedy_token_ids"))));
            }
        }
        return cases;
    }
}
