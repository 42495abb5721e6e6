package dev.vlm4j.server.openai;

import java.util.UUID;

/** Response ids in OpenAI's style: a prefix ({@code chatcmpl}, {@code cmpl}) and 32 random hex digits. */
final class RequestIds {

    private RequestIds() {}

    static String next(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().replace("-", "");
    }

    static long nowSeconds() {
        return System.currentTimeMillis() / 1000;
    }
}
