package dev.vlm4j.server.openai;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpTimeoutException;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;

/**
 * Fetches the bytes of a request's image URL, safely:
 * <ul>
 *   <li>{@code data:image/…;base64,…} URLs are decoded;</li>
 *   <li>{@code http(s)://} URLs are fetched only from hosts named in {@code --allowed-media-domains} (exact host
 *       names), without following redirects, within the timeout and the size limit;</li>
 *   <li>{@code file:} URLs are read only under {@code --allowed-local-media-path}: the file's real path
 *       (symbolic links resolved) must lie inside the allowed directory's real path, so {@code ..} and links
 *       that lead out are refused.</li>
 * </ul>
 * Every refusal is a 400 that names the URL's place in the request and the setting that governs it.
 */
final class MediaFetcher {

    private static final Pattern WHITESPACE = Pattern.compile("\\s+");

    private final Set<String> allowedDomains;   // lower case
    private final Path allowedLocalRoot;        // real path, or null
    private final Duration timeout;
    private final int maxBytes;
    private final HttpClient http;

    /**
     * @param allowedLocalRoot the directory local files may come from, or null to refuse them
     * @param maxBytes         the largest image accepted, in bytes
     */
    MediaFetcher(Set<String> allowedDomains, Path allowedLocalRoot, Duration timeout, int maxBytes) {
        this.allowedDomains = new TreeSet<>();
        for (String d : allowedDomains) this.allowedDomains.add(d.toLowerCase(Locale.ROOT));
        try {
            this.allowedLocalRoot = allowedLocalRoot == null ? null : allowedLocalRoot.toRealPath();
        } catch (IOException e) {
            throw new IllegalArgumentException("--allowed-local-media-path " + allowedLocalRoot + " cannot be resolved: " + e.getMessage(), e);
        }
        if (this.allowedLocalRoot != null && !Files.isDirectory(this.allowedLocalRoot)) {
            throw new IllegalArgumentException("--allowed-local-media-path " + allowedLocalRoot + " is not a directory");
        }
        this.timeout = timeout;
        this.maxBytes = maxBytes;
        this.http = HttpClient.newBuilder().connectTimeout(timeout).followRedirects(HttpClient.Redirect.NEVER).build();
    }

    /** The bytes {@code url} names; {@code where} is its place in the request ({@code messages[0].content[1].image_url}). */
    byte[] fetch(String url, String where) {
        int colon = url.indexOf(':');
        String scheme = colon < 0 ? "" : url.substring(0, colon).toLowerCase(Locale.ROOT);
        return switch (scheme) {
            case "data" -> dataUrl(url, where);
            case "http", "https" -> httpUrl(url, where);
            case "file" -> localFile(url, where);
            default -> throw refuse(where, "image URLs must be data:, http(s): or file: URLs, got \"" + abbreviate(url) + "\"");
        };
    }

    private byte[] dataUrl(String url, String where) {
        int comma = url.indexOf(',');
        if (comma < 0) throw refuse(where, "a data: URL needs a comma before its data");
        String meta = url.substring("data:".length(), comma).toLowerCase(Locale.ROOT);
        if (!meta.endsWith(";base64")) throw refuse(where, "a data: URL of an image must be base64-encoded (data:image/png;base64,...)");
        if (!meta.isEmpty() && !meta.startsWith("image/") && !meta.equals(";base64")) {
            throw refuse(where, "a data: URL's media type must be image/..., got " + meta.substring(0, meta.length() - ";base64".length()));
        }
        String data = url.substring(comma + 1);
        if ((long) data.length() * 3 / 4 > maxBytes) throw tooLarge(where);
        try {
            return Base64.getDecoder().decode(WHITESPACE.matcher(data).replaceAll(""));
        } catch (IllegalArgumentException e) {
            throw refuse(where, "the data: URL is not valid base64: " + e.getMessage());
        }
    }

    private byte[] httpUrl(String url, String where) {
        URI uri;
        try {
            uri = new URI(url);
        } catch (URISyntaxException e) {
            throw refuse(where, "malformed URL: " + e.getMessage());
        }
        String host = uri.getHost() == null ? "" : uri.getHost().toLowerCase(Locale.ROOT);
        if (allowedDomains.isEmpty()) {
            throw refuse(where, "fetching images over http(s) is off; start the server with --allowed-media-domains " + (host.isEmpty() ? "HOST" : host));
        }
        if (!allowedDomains.contains(host)) {
            throw refuse(where, "fetching images from " + (host.isEmpty() ? "\"" + abbreviate(url) + "\"" : host)
                    + " is not allowed; --allowed-media-domains allows " + allowedDomains);
        }
        HttpRequest request = HttpRequest.newBuilder(uri).timeout(timeout).GET().build();
        CompletableFuture<HttpResponse<byte[]>> response = http.sendAsync(request, info -> limitedBody(info, where));
        try {
            HttpResponse<byte[]> r = response.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            if (r.statusCode() / 100 != 2) throw refuse(where, "fetching " + abbreviate(url) + " answered HTTP " + r.statusCode());
            return r.body();
        } catch (TimeoutException e) {
            response.cancel(true);
            throw tookTooLong(where, url);
        } catch (InterruptedException e) {
            response.cancel(true);
            Thread.currentThread().interrupt();
            throw refuse(where, "interrupted while fetching " + abbreviate(url));
        } catch (ExecutionException e) {
            if (e.getCause() instanceof ApiException api) throw api;
            if (e.getCause() instanceof HttpTimeoutException) throw tookTooLong(where, url); // the client's timer, same limit, may fire first
            throw refuse(where, "fetching " + abbreviate(url) + " failed: " + e.getCause());
        }
    }

    private ApiException tookTooLong(String where, String url) {
        return refuse(where, "fetching " + abbreviate(url) + " took longer than " + timeout.toMillis() + " ms");
    }

    /** Reads at most maxBytes of a response body, failing as soon as more arrive (or the announced length is larger). */
    private HttpResponse.BodySubscriber<byte[]> limitedBody(HttpResponse.ResponseInfo info, String where) {
        long announced = info.headers().firstValueAsLong("content-length").orElse(-1);
        CompletableFuture<byte[]> body = new CompletableFuture<>();
        return new HttpResponse.BodySubscriber<>() {
            private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            private Flow.Subscription subscription;

            @Override public CompletionStage<byte[]> getBody() { return body; }

            @Override
            public void onSubscribe(Flow.Subscription s) {
                subscription = s;
                if (announced > maxBytes) {
                    s.cancel();
                    body.completeExceptionally(tooLarge(where));
                } else {
                    s.request(Long.MAX_VALUE);
                }
            }

            @Override
            public void onNext(List<ByteBuffer> buffers) {
                for (ByteBuffer b : buffers) {
                    if (bytes.size() + b.remaining() > maxBytes) {
                        subscription.cancel();
                        body.completeExceptionally(tooLarge(where));
                        return;
                    }
                    byte[] chunk = new byte[b.remaining()];
                    b.get(chunk);
                    bytes.writeBytes(chunk);
                }
            }

            @Override public void onError(Throwable t) { body.completeExceptionally(t); }
            @Override public void onComplete() { body.complete(bytes.toByteArray()); }
        };
    }

    private byte[] localFile(String url, String where) {
        if (allowedLocalRoot == null) {
            throw refuse(where, "reading local image files is off; start the server with --allowed-local-media-path DIR");
        }
        Path real;
        try {
            real = Path.of(new URI(url)).toRealPath();
        } catch (URISyntaxException | IllegalArgumentException e) {
            throw refuse(where, "malformed file URL \"" + abbreviate(url) + "\": use file:///absolute/path");
        } catch (NoSuchFileException e) {
            throw refuse(where, "no such file: " + abbreviate(url));
        } catch (IOException e) {
            throw refuse(where, "cannot read " + abbreviate(url) + ": " + e.getMessage());
        }
        if (!real.startsWith(allowedLocalRoot)) {
            throw refuse(where, abbreviate(url) + " is outside --allowed-local-media-path " + allowedLocalRoot);
        }
        try {
            if (!Files.isRegularFile(real)) throw refuse(where, abbreviate(url) + " is not a regular file");
            if (Files.size(real) > maxBytes) throw tooLarge(where);
            return Files.readAllBytes(real);
        } catch (IOException e) {
            throw refuse(where, "cannot read " + abbreviate(url) + ": " + e.getMessage());
        }
    }

    private ApiException tooLarge(String where) {
        return refuse(where, "the image is larger than the server's limit of " + maxBytes + " bytes");
    }

    private static ApiException refuse(String where, String why) {
        return ApiException.badRequest(where + ": " + why, where);
    }

    private static String abbreviate(String url) {
        return url.length() <= 100 ? url : url.substring(0, 97) + "...";
    }
}
