package dev.vlm4j.server.openai;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * How the OpenAI-compatible server runs; {@link #builder()} starts from the defaults.
 *
 * @param host                  the address to listen on
 * @param port                  the port, or 0 for any free one
 * @param apiKey                the key clients must send as {@code Authorization: Bearer KEY} on /v1 routes, or null for none
 * @param servedModelNames      the names requests may use for the model; the first is reported in responses
 * @param chatTemplate          a chat template file (or the template itself) overriding the model's, or null
 * @param allowedMediaDomains   host names http(s) image URLs may point to; empty: none
 * @param allowedLocalMediaPath the directory file: image URLs may point into, or null: none
 * @param maxWaitingRequests    requests that may wait for a running slot before new ones get 503
 * @param maxBodyBytes          the largest request body; larger ones get 413
 * @param mediaFetchTimeout     how long fetching an http(s) image may take
 * @param maxMediaBytes         the largest image accepted from a URL
 */
public record ServerConfig(String host, int port, String apiKey, List<String> servedModelNames, String chatTemplate,
                           Set<String> allowedMediaDomains, Path allowedLocalMediaPath, int maxWaitingRequests, long maxBodyBytes,
                           Duration mediaFetchTimeout, int maxMediaBytes) {

    public static final String DEFAULT_HOST = "127.0.0.1";
    public static final int DEFAULT_PORT = 8000;
    public static final int DEFAULT_MAX_WAITING_REQUESTS = 1024;
    public static final int DEFAULT_MAX_BODY_MB = 32;
    public static final int DEFAULT_MEDIA_FETCH_TIMEOUT_S = 5;
    public static final int DEFAULT_MAX_MEDIA_MB = 20;

    public ServerConfig {
        Objects.requireNonNull(host, "host");
        servedModelNames = List.copyOf(servedModelNames);
        allowedMediaDomains = Set.copyOf(allowedMediaDomains);
        if (servedModelNames.isEmpty()) throw new IllegalArgumentException("give the model at least one served name");
        if (port < 0 || port > 65535) throw new IllegalArgumentException("--port must be in 0..65535, got " + port);
        if (maxWaitingRequests < 0) throw new IllegalArgumentException("--max-waiting-requests must be at least 0, got " + maxWaitingRequests);
        if (maxBodyBytes <= 0) throw new IllegalArgumentException("--max-request-body-mb must be positive");
        if (maxMediaBytes <= 0) throw new IllegalArgumentException("--max-media-mb must be positive");
        if (mediaFetchTimeout.isNegative() || mediaFetchTimeout.isZero()) throw new IllegalArgumentException("--media-fetch-timeout must be positive");
    }

    /** The defaults, serving the model under {@code modelName}. */
    public static Builder builder(String modelName) {
        return new Builder(modelName);
    }

    /** Collects a ServerConfig; unset values keep the defaults above. */
    public static final class Builder {
        private String host = DEFAULT_HOST;
        private int port = DEFAULT_PORT;
        private String apiKey;
        private List<String> servedModelNames;
        private String chatTemplate;
        private Set<String> allowedMediaDomains = Set.of();
        private Path allowedLocalMediaPath;
        private int maxWaitingRequests = DEFAULT_MAX_WAITING_REQUESTS;
        private long maxBodyBytes = DEFAULT_MAX_BODY_MB * 1024L * 1024;
        private Duration mediaFetchTimeout = Duration.ofSeconds(DEFAULT_MEDIA_FETCH_TIMEOUT_S);
        private int maxMediaBytes = DEFAULT_MAX_MEDIA_MB * 1024 * 1024;

        private Builder(String modelName) {
            this.servedModelNames = List.of(modelName);
        }

        public Builder host(String host) { this.host = host; return this; }
        public Builder port(int port) { this.port = port; return this; }
        public Builder apiKey(String apiKey) { this.apiKey = apiKey; return this; }
        public Builder servedModelNames(List<String> names) { this.servedModelNames = List.copyOf(names); return this; }
        public Builder chatTemplate(String chatTemplate) { this.chatTemplate = chatTemplate; return this; }
        public Builder allowedMediaDomains(Set<String> domains) { this.allowedMediaDomains = Set.copyOf(domains); return this; }
        public Builder allowedLocalMediaPath(Path dir) { this.allowedLocalMediaPath = dir; return this; }
        public Builder maxWaitingRequests(int n) { this.maxWaitingRequests = n; return this; }
        public Builder maxBodyBytes(long bytes) { this.maxBodyBytes = bytes; return this; }
        public Builder mediaFetchTimeout(Duration timeout) { this.mediaFetchTimeout = timeout; return this; }
        public Builder maxMediaBytes(int bytes) { this.maxMediaBytes = bytes; return this; }

        public ServerConfig build() {
            return new ServerConfig(host, port, apiKey, servedModelNames, chatTemplate, allowedMediaDomains, allowedLocalMediaPath,
                    maxWaitingRequests, maxBodyBytes, mediaFetchTimeout, maxMediaBytes);
        }
    }
}
