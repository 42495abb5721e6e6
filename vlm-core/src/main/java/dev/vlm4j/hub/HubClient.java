package dev.vlm4j.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.hub.HubException.Kind;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandler;
import java.net.http.HttpResponse.BodySubscribers;
import java.net.http.HttpTimeoutException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The three Hub calls a download needs, with the Hub's headers and errors as huggingface_hub reads them:
 * <ul>
 *   <li>{@code GET /api/models/<repo>/revision/<revision>}: the commit sha and the repo's file names (siblings);</li>
 *   <li>{@code HEAD /<repo>/resolve/<commit>/<file>}: the file's ETag ({@code X-Linked-Etag} before {@code ETag}),
 *       size ({@code X-Linked-Size} before {@code Content-Length}), {@code X-Repo-Commit}, and, for LFS files, a
 *       redirect to the CDN whose {@code Location} is where the bytes are fetched; relative redirects (a renamed
 *       repo) are followed;</li>
 *   <li>{@code GET} of the file's location with {@code Range: bytes=<have>-} to resume a partial transfer.</li>
 * </ul>
 * The token goes as {@code Authorization: Bearer} to the Hub's own host only, never to the CDN.
 */
final class HubClient implements AutoCloseable {

    /** A revision's commit and the names of every file the repo holds at it. */
    record RepoInfo(String commit, Set<String> files) {}

    /** What a HEAD on {@code resolve/} tells about one file; {@code location} is where its bytes are. */
    record FileMetadata(String commit, String etag, long size, URI location) {}

    private static final int MAX_REDIRECTS = 10;
    private static final Duration RETRY_PAUSE = Duration.ofMillis(500);
    private static final Pattern CONTENT_RANGE_START = Pattern.compile("bytes (\\d+)-");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HubSettings settings;
    private final URI endpoint;
    private final HttpClient http;

    HubClient(HubSettings settings) {
        this.settings = settings;
        this.endpoint = URI.create(settings.endpoint());
        // HTTP/1.1: parallel transfers get a connection each instead of sharing one HTTP/2 connection.
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .followRedirects(HttpClient.Redirect.NEVER)
                .connectTimeout(settings.metadataTimeout())
                .build();
    }

    @Override
    public void close() {
        http.close();
    }

    RepoInfo repoInfo(HubTarget target) {
        URI uri = URI.create(settings.endpoint() + "/api/models/" + target.repo().id() + "/revision/" + encode(target.revision(), false));
        HttpResponse<byte[]> response = followRelativeRedirects(target, uri, "GET", HttpResponse.BodyHandlers.ofByteArray());
        if (response.statusCode() != 200) throw statusError(target, response);
        JsonNode info;
        try {
            info = JSON.readTree(response.body());
        } catch (IOException e) {
            throw target.error(Kind.HTTP, uri + " did not answer with JSON: is HF_ENDPOINT (" + settings.endpoint() + ") a Hugging Face Hub?", e);
        }
        String commit = info == null ? null : info.path("sha").textValue();
        if (commit == null || !RepoCache.isCommit(commit)) {
            throw target.error(Kind.HTTP, uri + " gave no commit sha: is HF_ENDPOINT (" + settings.endpoint() + ") a Hugging Face Hub?");
        }
        Set<String> files = new LinkedHashSet<>();
        for (JsonNode sibling : info.path("siblings")) {
            String name = sibling.path("rfilename").textValue();
            if (name != null) files.add(name);
        }
        return new RepoInfo(commit, Set.copyOf(files));
    }

    /** The metadata of {@code target}'s file at {@code commit} (the revision pinned, so that all files come from one commit). */
    FileMetadata fileMetadata(HubTarget target, String commit) {
        URI uri = URI.create(settings.endpoint() + "/" + target.repo().id() + "/resolve/" + encode(commit, false)
                + "/" + encode(target.file(), true));
        HttpResponse<Void> response = followRelativeRedirects(target, uri, "HEAD", HttpResponse.BodyHandlers.discarding());
        int status = response.statusCode();
        URI answered = response.request().uri();
        if (status >= 300 && status < 400) {
            // An absolute redirect: the bytes live on the CDN, the metadata came with the redirect.
            return metadata(target, response, answered.resolve(response.headers().firstValue("Location").orElseThrow()));
        }
        if (status != 200) throw statusError(target, response);
        return metadata(target, response, answered);
    }

    /**
     * Sends a metadata request, following the Hub's relative redirects (a renamed repo) but not absolute ones (the
     * CDN), as huggingface_hub does; the answer that is not a relative redirect is returned as it is.
     */
    private <T> HttpResponse<T> followRelativeRedirects(HubTarget target, URI uri, String method, BodyHandler<T> handler) {
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            // identity: the Content-Length must be the file's size, not that of a compressed body.
            HttpRequest request = request(uri).method(method, HttpRequest.BodyPublishers.noBody())
                    .header("Accept-Encoding", "identity").timeout(settings.metadataTimeout()).build();
            HttpResponse<T> response = exchange(target, request, handler);
            int status = response.statusCode();
            if (status < 300 || status >= 400) return response;
            String location = response.headers().firstValue("Location")
                    .orElseThrow(() -> target.error(Kind.HTTP, "the Hub redirected " + request.uri() + " without a Location"));
            if (URI.create(location).getHost() != null) return response;
            uri = uri.resolve(location);
        }
        throw target.error(Kind.HTTP, "more than " + MAX_REDIRECTS + " redirects from " + uri);
    }

    /**
     * Brings {@code incomplete} up to {@code expectedSize} bytes from {@code location}, resuming from its length.
     * A transfer that breaks or goes silent is resumed in place; after {@link HubSettings#transferRetries()} tries
     * without a new byte the error is raised and the partial file stays for the next run to resume.
     */
    void download(HubTarget target, URI location, long expectedSize, Path incomplete, LongConsumer progress) {
        int retriesLeft = settings.transferRetries();
        while (true) {
            long before = sizeOf(incomplete);
            if (before >= expectedSize) return;  // complete; the caller verifies it
            try {
                transfer(target, location, before, incomplete, progress);
                long after = sizeOf(incomplete);
                if (after >= expectedSize) return;
                throw new TransferBroken(Kind.CONNECTION, "the server ended the transfer after " + after + " of " + expectedSize + " bytes", null);
            } catch (TransferBroken broken) {
                long after = sizeOf(incomplete);
                if (after > before) retriesLeft = settings.transferRetries();  // progress: start counting again
                if (retriesLeft == 0) {
                    throw target.error(broken.kind, broken.getMessage() + "; " + after + " of " + expectedSize
                            + " bytes are kept in " + incomplete + " and the next run resumes from there", broken.getCause());
                }
                retriesLeft--;
                pause(target);
            }
        }
    }

    /** One GET of the file, following redirects, appending to {@code incomplete} from byte {@code have}. */
    private void transfer(HubTarget target, URI location, long have, Path incomplete, LongConsumer progress) throws TransferBroken {
        URI uri = location;
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpRequest.Builder get = request(uri).GET().timeout(settings.downloadTimeout());
            if (have > 0) get.header("Range", "bytes=" + have + "-");
            HttpRequest request = get.build();
            HttpResponse<Long> response;
            try (FileChannel out = FileChannel.open(incomplete, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
                out.position(have);
                FileBodySubscriber body = new FileBodySubscriber(out, progress);
                BodyHandler<Long> handler = info -> {
                    if (info.statusCode() == 206 && startsAt(info.headers().firstValue("Content-Range").orElse(""), have)) return body;
                    if (info.statusCode() == 200) {
                        // The server ignored the Range: the body is the whole file, so start it over.
                        truncate(out);
                        progress.accept(-have);
                        return body;
                    }
                    return BodySubscribers.replacing(-1L);
                };
                response = awaitBody(target, request, handler, body);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + incomplete + ": " + e.getMessage(), e);
            }
            int status = response.statusCode();
            if (status == 200 || (status == 206 && response.body() >= 0)) return;
            if (status == 206) throw target.error(Kind.HTTP, "the server answered a request for bytes " + have + "- of " + uri + " with another range");
            if (status == 416) {
                // The server has fewer bytes than the partial file: it cannot be resumed, so it is dropped.
                truncate(incomplete);
                progress.accept(-have);
                throw new TransferBroken(Kind.CONNECTION, "the server refused to resume at byte " + have + " (416); the partial file was dropped", null);
            }
            if (status < 300 || status >= 400) throw statusError(target, response);
            String next = response.headers().firstValue("Location")
                    .orElseThrow(() -> target.error(Kind.HTTP, "a redirect from " + request.uri() + " without a Location"));
            uri = uri.resolve(next);
        }
        throw target.error(Kind.HTTP, "more than " + MAX_REDIRECTS + " redirects from " + location);
    }

    /** Waits for the body, aborting it when no byte has come for the download timeout. */
    private HttpResponse<Long> awaitBody(HubTarget target, HttpRequest request, BodyHandler<Long> handler, FileBodySubscriber body)
            throws TransferBroken {
        CompletableFuture<HttpResponse<Long>> pending = http.sendAsync(request, handler);
        Duration limit = settings.downloadTimeout();
        long pollMillis = Math.max(10, Math.min(200, limit.toMillis() / 4));
        while (true) {
            try {
                return pending.get(pollMillis, TimeUnit.MILLISECONDS);
            } catch (TimeoutException stillRunning) {
                if (body.started() && body.silentNanos() > limit.toNanos()) {
                    body.abort(new HttpTimeoutException("no data for " + limit));
                    pending.cancel(true);
                    throw new TransferBroken(Kind.TIMEOUT, "no data from " + request.uri().getHost() + " for " + seconds(limit)
                            + " mid-transfer (raise HF_HUB_DOWNLOAD_TIMEOUT for a slow link)", null);
                }
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof HttpTimeoutException) {
                    throw new TransferBroken(Kind.TIMEOUT, "no answer from " + request.uri().getHost() + " within " + seconds(limit)
                            + " (raise HF_HUB_DOWNLOAD_TIMEOUT for a slow link)", cause);
                }
                throw new TransferBroken(Kind.CONNECTION, "the transfer from " + request.uri().getHost() + " broke: " + describe(cause), cause);
            } catch (InterruptedException e) {
                body.abort(e);
                pending.cancel(true);
                Thread.currentThread().interrupt();
                throw target.error(Kind.CONNECTION, "interrupted while downloading", e);
            }
        }
    }

    /** Sends a request whose answer is small, and must be complete within the metadata timeout. */
    private <T> HttpResponse<T> exchange(HubTarget target, HttpRequest request, BodyHandler<T> handler) {
        Duration limit = settings.metadataTimeout();
        CompletableFuture<HttpResponse<T>> pending = http.sendAsync(request, handler);
        try {
            return pending.get(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            pending.cancel(true);
            throw metadataTimeout(target, request, e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof HttpTimeoutException) throw metadataTimeout(target, request, cause);
            throw target.error(Kind.CONNECTION, "cannot reach " + request.uri().getHost() + " (" + describe(cause) + "): check the network"
                    + " and HF_ENDPOINT (" + settings.endpoint() + "), or set HF_HUB_OFFLINE=1 to use only the cache", cause);
        } catch (InterruptedException e) {
            pending.cancel(true);
            Thread.currentThread().interrupt();
            throw target.error(Kind.CONNECTION, "interrupted while asking the Hub", e);
        }
    }

    private HubException metadataTimeout(HubTarget target, HttpRequest request, Throwable cause) {
        return target.error(Kind.TIMEOUT, "no answer from " + request.uri().getHost() + " within " + seconds(settings.metadataTimeout())
                + " for " + request.method() + " " + request.uri() + " (raise HF_HUB_ETAG_TIMEOUT for a slow link)", cause);
    }

    private FileMetadata metadata(HubTarget target, HttpResponse<?> response, URI location) {
        var headers = response.headers();
        String commit = headers.firstValue("X-Repo-Commit").orElseThrow(() -> target.error(Kind.HTTP, response.request().uri()
                + " has no X-Repo-Commit header: is HF_ENDPOINT (" + settings.endpoint() + ") a Hugging Face Hub, or is a proxy in the way?"));
        String etag = headers.firstValue("X-Linked-Etag").or(() -> headers.firstValue("ETag")).map(HubClient::normalizeEtag)
                .filter(e -> !e.isEmpty() && !e.contains("/") && !e.startsWith("."))
                .orElseThrow(() -> target.error(Kind.HTTP, response.request().uri() + " has no usable ETag: the file cannot be verified or cached"));
        long size = headers.firstValue("X-Linked-Size").or(() -> headers.firstValue("Content-Length")).map(HubClient::parseSize)
                .orElseThrow(() -> target.error(Kind.HTTP, response.request().uri() + " tells no file size (X-Linked-Size or Content-Length)"));
        if (size < 0) throw target.error(Kind.HTTP, response.request().uri() + " tells an invalid file size");
        return new FileMetadata(commit, etag, size, location);
    }

    /** The error a failed answer stands for, told apart as huggingface_hub does: by X-Error-Code, then by status. */
    private HubException statusError(HubTarget target, HttpResponse<?> response) {
        int status = response.statusCode();
        URI uri = response.request().uri();
        String code = response.headers().firstValue("X-Error-Code").orElse("");
        String said = response.headers().firstValue("X-Error-Message").map(m -> " (the Hub says: " + m + ")").orElse("");
        String page = settings.endpoint() + "/" + target.repo().id();
        String tokens = settings.endpoint() + "/settings/tokens";
        boolean tokenSent = settings.token() != null && isHub(uri);
        if (!isHub(uri)) {
            return target.error(Kind.HTTP, "the download server " + uri.getHost() + " answered " + status + said
                    + (status == 403 ? ": its signed link may have expired, run again" : ""));
        }
        if (code.equals("GatedRepo") || status == 403) {
            return target.error(Kind.GATED, "access to " + page + " is restricted (" + status + ")" + said + ": " + (tokenSent
                    ? "the account of the token in use (HF_TOKEN) must accept the model's licence on that page, and the token needs read access"
                    : "accept the model's licence on that page, then set HF_TOKEN to a read token of that account (" + tokens + ")"));
        }
        if (status == 401) {
            return target.error(Kind.UNAUTHORIZED, "the Hub refused the request (401)" + said + ": the repo does not exist, or it is private or gated and "
                    + (tokenSent ? "the token in use (HF_TOKEN) is invalid or has no access to it: check it, and accept the licence at " + page
                                 : "no token was sent: set HF_TOKEN to a read token (" + tokens + ") and accept the licence at " + page));
        }
        return switch (code) {
            case "RepoNotFound" -> target.error(Kind.REPO_NOT_FOUND, "no model repo " + target.repo() + " on " + settings.endpoint() + said
                    + ": check the id (namespace/name)");
            case "RevisionNotFound" -> target.error(Kind.REVISION_NOT_FOUND, "the repo has no branch, tag or commit '" + target.revision() + "'"
                    + said + ": check the revision against " + page);
            case "EntryNotFound" -> target.error(Kind.ENTRY_NOT_FOUND, "the repo has no file '" + target.file() + "' at this revision" + said);
            default -> target.error(Kind.HTTP, "the Hub answered " + status + " to " + response.request().method() + " " + uri + said
                    + (status == 429 ? ": too many requests, wait a minute and run again (a token, HF_TOKEN, raises the limit)"
                       : status >= 500 ? ": the Hub may be down, retry later" : ""));
        };
    }

    private HttpRequest.Builder request(URI uri) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).header("User-Agent", "vlm4j; java/" + Runtime.version().feature());
        if (settings.token() != null && isHub(uri)) b.header("Authorization", "Bearer " + settings.token());
        return b;
    }

    /** The Hub's own host, which may see the token; a CDN host may not. */
    private boolean isHub(URI uri) {
        return Objects.equals(uri.getScheme(), endpoint.getScheme()) && Objects.equals(uri.getHost(), endpoint.getHost())
                && uri.getPort() == endpoint.getPort();
    }

    private static boolean startsAt(String contentRange, long have) {
        Matcher m = CONTENT_RANGE_START.matcher(contentRange);
        return m.lookingAt() && Long.parseLong(m.group(1)) == have;
    }

    /** {@code W/"abc"} and {@code "abc"} are both {@code abc}. */
    static String normalizeEtag(String etag) {
        String e = etag.strip();
        if (e.startsWith("W/")) e = e.substring(2);
        return e.replace("\"", "");
    }

    private static long parseSize(String value) {
        try {
            return Long.parseLong(value.strip());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Percent-encodes everything but RFC 3986's unreserved characters (and '/', when {@code keepSlash}). */
    static String encode(String s, boolean keepSlash) {
        StringBuilder out = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            char c = (char) (b & 0xff);
            boolean unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "-._~".indexOf(c) >= 0;
            if (unreserved || (keepSlash && c == '/')) out.append(c);
            else out.append('%').append(String.format("%02X", b & 0xff));
        }
        return out.toString();
    }

    private static long sizeOf(Path file) {
        try {
            return Files.exists(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the size of " + file + ": " + e.getMessage(), e);
        }
    }

    private static void truncate(FileChannel out) {
        try {
            out.truncate(0);
            out.position(0);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void truncate(Path file) {
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.WRITE)) {
            out.truncate(0);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot truncate " + file + ": " + e.getMessage(), e);
        }
    }

    private static void pause(HubTarget target) {
        try {
            Thread.sleep(RETRY_PAUSE);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw target.error(Kind.CONNECTION, "interrupted while downloading", e);
        }
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }

    private static String describe(Throwable t) {
        String m = t.getMessage();
        return t.getClass().getSimpleName() + (m == null || m.isBlank() ? "" : ": " + m);
    }

    /** A transfer that broke or went silent: resumable, unlike an HTTP error. */
    private static final class TransferBroken extends Exception {
        final Kind kind;

        TransferBroken(Kind kind, String message, Throwable cause) {
            super(message, cause);
            this.kind = kind;
        }
    }
}
