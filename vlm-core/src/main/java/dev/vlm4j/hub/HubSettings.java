package dev.vlm4j.hub;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Where and how models are fetched, read from the same environment variables that huggingface_hub reads, so that
 * vlm4j and Python share one cache, one endpoint and one token.
 *
 * @param endpoint         the Hub's base URL, without a trailing slash ({@code HF_ENDPOINT}, default https://huggingface.co)
 * @param cacheDir         the hub cache ({@code HF_HUB_CACHE}, else {@code HF_HOME/hub}, else {@code ~/.cache/huggingface/hub})
 * @param offline          {@code HF_HUB_OFFLINE} (or {@code TRANSFORMERS_OFFLINE}) is 1/ON/YES/TRUE: never touch the network
 * @param token            {@code HF_TOKEN}, else the file {@code huggingface-cli login} writes ({@code HF_TOKEN_PATH}, default
 *                         {@code HF_HOME/token}); null when there is none
 * @param metadataTimeout  limit for an API call or a file's HEAD ({@code HF_HUB_ETAG_TIMEOUT} seconds, default 10)
 * @param downloadTimeout  limit for a transfer's response and for each silence inside its body
 *                         ({@code HF_HUB_DOWNLOAD_TIMEOUT} seconds, default 10)
 * @param maxParallel      files transferred at once (8, as huggingface_hub's snapshot_download)
 * @param transferRetries  times a broken transfer is resumed in place before giving up; a retry that brings new
 *                         bytes does not count (huggingface_hub resumes 5 times the same way)
 */
public record HubSettings(String endpoint, Path cacheDir, boolean offline, String token,
                          Duration metadataTimeout, Duration downloadTimeout, int maxParallel, int transferRetries) {

    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";

    private static final Set<String> TRUE_VALUES = Set.of("1", "ON", "YES", "TRUE");

    public HubSettings {
        if (endpoint == null || endpoint.isBlank()) throw new IllegalArgumentException("the Hub endpoint must be given");
        endpoint = endpoint.strip().replaceAll("/+$", "");
        if (!endpoint.startsWith("http://") && !endpoint.startsWith("https://")) {
            throw new IllegalArgumentException("HF_ENDPOINT must be an http(s) URL, got '" + endpoint + "'");
        }
        if (token != null && token.isBlank()) token = null;
        if (token != null) token = token.strip();
        if (maxParallel < 1) throw new IllegalArgumentException("maxParallel must be at least 1, got " + maxParallel);
        if (transferRetries < 0) throw new IllegalArgumentException("transferRetries must be >= 0, got " + transferRetries);
        if (metadataTimeout.isNegative() || metadataTimeout.isZero() || downloadTimeout.isNegative() || downloadTimeout.isZero()) {
            throw new IllegalArgumentException("timeouts must be positive");
        }
    }

    /** The settings of this process's environment. */
    public static HubSettings fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** The settings that {@code env} describes; {@code ~} is this JVM's {@code user.home}. */
    public static HubSettings fromEnvironment(Map<String, String> env) {
        Path home = Path.of(System.getProperty("user.home"));
        Path hfHome = path(env, "HF_HOME", home)
                .orElse(path(env, "XDG_CACHE_HOME", home).orElse(home.resolve(".cache")).resolve("huggingface"));
        Path cache = path(env, "HF_HUB_CACHE", home)
                .or(() -> path(env, "HUGGINGFACE_HUB_CACHE", home))
                .orElse(hfHome.resolve("hub"));
        boolean offline = isTrue(env.get("HF_HUB_OFFLINE")) || isTrue(env.get("TRANSFORMERS_OFFLINE"));
        String token = nonBlank(env.get("HF_TOKEN"));
        if (token == null) token = readTokenFile(path(env, "HF_TOKEN_PATH", home).orElse(hfHome.resolve("token")));
        return new HubSettings(nonBlank(env.get("HF_ENDPOINT")) != null ? env.get("HF_ENDPOINT") : DEFAULT_ENDPOINT, cache, offline, token,
                seconds(env, "HF_HUB_ETAG_TIMEOUT"), seconds(env, "HF_HUB_DOWNLOAD_TIMEOUT"), 8, 5);
    }

    /** These settings with {@code token} (an explicit token wins over HF_TOKEN); null keeps the current one. */
    public HubSettings withToken(String token) {
        return token == null ? this : new HubSettings(endpoint, cacheDir, offline, token, metadataTimeout, downloadTimeout, maxParallel, transferRetries);
    }

    public HubSettings withTimeouts(Duration metadata, Duration download) {
        return new HubSettings(endpoint, cacheDir, offline, token, metadata, download, maxParallel, transferRetries);
    }

    public HubSettings withTransferRetries(int retries) {
        return new HubSettings(endpoint, cacheDir, offline, token, metadataTimeout, downloadTimeout, maxParallel, retries);
    }

    @Override
    public String toString() {
        // Never print the token itself.
        return "HubSettings[endpoint=" + endpoint + ", cacheDir=" + cacheDir + ", offline=" + offline
                + ", token=" + (token == null ? "none" : "set") + ", metadataTimeout=" + metadataTimeout
                + ", downloadTimeout=" + downloadTimeout + ", maxParallel=" + maxParallel + ", transferRetries=" + transferRetries + "]";
    }

    private static boolean isTrue(String value) {
        return value != null && TRUE_VALUES.contains(value.strip().toUpperCase(Locale.ROOT));
    }

    private static String nonBlank(String value) {
        return value == null || value.isBlank() ? null : value;
    }

    /** A path variable with {@code ~} expanded as huggingface_hub's expanduser does. */
    private static Optional<Path> path(Map<String, String> env, String name, Path home) {
        String value = nonBlank(env.get(name));
        if (value == null) return Optional.empty();
        if (value.equals("~")) return Optional.of(home);
        if (value.startsWith("~/")) return Optional.of(home.resolve(value.substring(2)));
        return Optional.of(Path.of(value));
    }

    private static Duration seconds(Map<String, String> env, String name) {
        String value = nonBlank(env.get(name));
        if (value == null) return Duration.ofSeconds(10);
        try {
            int s = Integer.parseInt(value.strip());
            if (s <= 0) throw new NumberFormatException();
            return Duration.ofSeconds(s);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be a positive whole number of seconds, got '" + value + "'");
        }
    }

    private static String readTokenFile(Path file) {
        if (!Files.isRegularFile(file)) return null;
        try {
            return nonBlank(Files.readString(file).strip());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the Hugging Face token file " + file + ": " + e.getMessage(), e);
        }
    }
}
