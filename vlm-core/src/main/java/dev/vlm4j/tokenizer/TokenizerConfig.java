package dev.vlm4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The parts of a tokenizer_config.json that change how text becomes ids.
 *
 * @param addBosToken prepend the BOS token when encoding ({@code add_bos_token}; by default, when
 *                    the config names a BOS token, as Llama's tokenizers do)
 * @param addEosToken append the EOS token when encoding ({@code add_eos_token}, default false)
 * @param bosToken    the BOS token's text, or null when the config names none; likewise the others
 */
record TokenizerConfig(boolean addBosToken, boolean addEosToken,
                       String bosToken, String eosToken, String padToken, String unkToken) {

    static TokenizerConfig parse(JsonNode config) {
        String bosToken = tokenText(config.path("bos_token"));
        return new TokenizerConfig(
                config.path("add_bos_token").asBoolean(bosToken != null),
                config.path("add_eos_token").asBoolean(false),
                bosToken,
                tokenText(config.path("eos_token")),
                tokenText(config.path("pad_token")),
                tokenText(config.path("unk_token")));
    }

    /** A special token is written either as its text or, in older configs, as an AddedToken object. */
    private static String tokenText(JsonNode node) {
        if (node.isTextual()) {
            return node.asText();
        }
        return node.isObject() ? node.path("content").asText(null) : null;
    }
}
