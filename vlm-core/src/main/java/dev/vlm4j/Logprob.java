package dev.vlm4j;

/**
 * A token's log-probability, as vLLM's {@code Logprob}.
 *
 * @param rank         1-based rank of the token in the distribution it was sampled from
 * @param decodedToken the token's text, or null when not detokenized
 */
public record Logprob(double logprob, Integer rank, String decodedToken) {}
