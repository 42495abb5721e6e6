package dev.vlm4j.hub;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Hugging Face Hub on 127.0.0.1 that answers in the Hub's shapes, as huggingface_hub's file_download.py and
 * hf_api.py read them:
 * <ul>
 *   <li>{@code GET /api/models/<repo>/revision/<rev>}: {@code {"id", "sha", "siblings": [{"rfilename"}]}};</li>
 *   <li>{@code HEAD|GET /<repo>/resolve/<rev>/<file>}: a file kept in git answers 200 with {@code ETag: "<git blob sha1>"},
 *       {@code X-Repo-Commit}, {@code Content-Length}; an LFS file (*.safetensors) answers 302 to a second server, the
 *       CDN, with {@code X-Linked-Etag: "<sha256>"}, {@code X-Linked-Size} and {@code X-Repo-Commit};</li>
 *   <li>errors with {@code X-Error-Code} RepoNotFound (401 without a token, 404 with one), RevisionNotFound,
 *       EntryNotFound, GatedRepo (401 without a token, 403 with one that was not granted);</li>
 *   <li>a renamed repo answers a relative 307 to its new name; {@code Range: bytes=N-} answers 206.</li>
 * </ul>
 * Faults on demand: cut or stalled transfers, corrupted blobs, a slow API, ignored ranges. Every request is recorded.
 */
final class FakeHub implements AutoCloseable {

    /** One request as a server saw it; {@code server} is "hub" or "cdn". */
    record Seen(String server, String method, String path, String authorization, String range) {}

    /** A repo: its commits (file name -> bytes) and refs (branch or tag -> commit). */
    static final class Repo {
        final Map<String, Map<String, byte[]>> commits = new ConcurrentHashMap<>();
        final Map<String, String> refs = new ConcurrentHashMap<>();
        /** Non-null: the repo is gated and only this token was granted access. */
        volatile String grantedToken;

        Repo commit(String sha, Map<String, byte[]> files) {
            commits.put(sha, new TreeMap<>(files));
            return this;
        }

        Repo ref(String name, String sha) {
            refs.put(name, sha);
            return this;
        }
    }

    private static final Pattern API = Pattern.compile("/api/models/(.+)/revision/([^/]+)");
    private static final Pattern RESOLVE = Pattern.compile("/(.+?)/resolve/([^/]+)/(.+)");
    private static final int CHUNK = 16 * 1024;

    private final Map<String, Repo> repos = new ConcurrentHashMap<>();
    private final Map<String, String> renamed = new ConcurrentHashMap<>();
    private final Map<String, byte[]> cdnBlobs = new ConcurrentHashMap<>();
    private final List<Seen> seen = Collections.synchronizedList(new ArrayList<>());
    private final ExecutorService threads = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "fake-hub");
        t.setDaemon(true);
        return t;
    });
    private final HttpServer hub;
    private final HttpServer cdn;

    // Faults for the transfers (GETs with a body) whose path ends with a given suffix, on either server.
    private final AtomicInteger cutsLeft = new AtomicInteger();
    private volatile String cutTarget = "";
    private volatile long cutAfter;
    private final AtomicInteger stallsLeft = new AtomicInteger();
    private volatile String stallTarget = "";
    private volatile long stallAfter;
    private volatile long stallMillis;
    private final Map<String, Boolean> corrupted = new ConcurrentHashMap<>();
    private volatile boolean ignoreRange;
    private volatile long apiDelayMillis;
    private final AtomicInteger activeTransfers = new AtomicInteger();
    private final AtomicInteger mostActiveTransfers = new AtomicInteger();

    FakeHub() throws IOException {
        hub = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        cdn = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        hub.createContext("/", ex -> handle(ex, this::hub));
        cdn.createContext("/", ex -> handle(ex, this::cdn));
        hub.setExecutor(threads);
        cdn.setExecutor(threads);
        hub.start();
        cdn.start();
    }

    String endpoint() {
        return "http://127.0.0.1:" + hub.getAddress().getPort();
    }

    Repo repo(String id) {
        return repos.computeIfAbsent(id, k -> new Repo());
    }

    void rename(String oldId, String newId) {
        renamed.put(oldId, newId);
    }

    List<Seen> seen() {
        synchronized (seen) {
            return List.copyOf(seen);
        }
    }

    void forget() {
        seen.clear();
    }

    /**
     * The next {@code times} transfers of the path ending with {@code target} (a file name, or an LFS blob's sha256)
     * stop after {@code afterBytes} bytes of their body, the connection dropped.
     */
    void cutTransfers(String target, int times, long afterBytes) {
        cutTarget = target;
        cutAfter = afterBytes;
        cutsLeft.set(times);
    }

    /** The next {@code times} transfers of paths ending with {@code target} go silent for {@code millis} after {@code afterBytes} bytes. */
    void stallTransfers(String target, int times, long afterBytes, long millis) {
        stallTarget = target;
        stallAfter = afterBytes;
        stallMillis = millis;
        stallsLeft.set(times);
    }

    /** The CDN serves the LFS blob {@code sha256} with one byte changed (same length) until {@link #heal}. */
    void corrupt(String sha256) {
        corrupted.put(sha256, true);
    }

    void heal() {
        corrupted.clear();
        cutsLeft.set(0);
        stallsLeft.set(0);
        ignoreRange = false;
        apiDelayMillis = 0;
    }

    void ignoreRange() {
        ignoreRange = true;
    }

    /** The most transfers that were running at one time. */
    int mostConcurrentTransfers() {
        return mostActiveTransfers.get();
    }

    void delayApi(long millis) {
        apiDelayMillis = millis;
    }

    static boolean isLfs(String file) {
        return file.endsWith(".safetensors");
    }

    /** git's object id of a blob, as {@code git hash-object} prints it. */
    static String gitSha1(byte[] content) {
        MessageDigest md = digest("SHA-1");
        md.update(("blob " + content.length + "\0").getBytes(StandardCharsets.US_ASCII));
        return HexFormat.of().formatHex(md.digest(content));
    }

    static String sha256(byte[] content) {
        return HexFormat.of().formatHex(digest("SHA-256").digest(content));
    }

    /** The ETag the Hub gives a file: its sha256 if it is in LFS, else its git blob sha1. */
    static String etag(String file, byte[] content) {
        return isLfs(file) ? sha256(content) : gitSha1(content);
    }

    @Override
    public void close() {
        hub.stop(0);
        cdn.stop(0);
        threads.shutdownNow();
    }

    private interface Handler {
        void handle(HttpExchange ex, String path) throws IOException, InterruptedException;
    }

    private void handle(HttpExchange ex, Handler handler) {
        String path = ex.getRequestURI().getRawPath();
        Headers h = ex.getRequestHeaders();
        seen.add(new Seen(ex.getHttpContext().getServer() == hub ? "hub" : "cdn", ex.getRequestMethod(), path,
                h.getFirst("Authorization"), h.getFirst("Range")));
        try (ex) {
            handler.handle(ex, path);
        } catch (IOException | InterruptedException e) {
            // The client went away (a cut or a timeout it chose): nothing to answer.
        }
    }

    private void hub(HttpExchange ex, String path) throws IOException, InterruptedException {
        Matcher api = API.matcher(path);
        Matcher resolve = RESOLVE.matcher(path);
        Matcher page = api.matches() ? api : resolve.matches() ? resolve : null;
        if (page == null) {
            error(ex, 404, null, "no such page", null);
            return;
        }
        String id = decode(page.group(1));
        if (renamed.containsKey(id)) {
            // A relative Location, as the Hub gives for a renamed repo.
            ex.getResponseHeaders().set("Location", path.replaceFirst("/" + Pattern.quote(id) + "/", "/" + renamed.get(id) + "/"));
            ex.sendResponseHeaders(307, -1);
            return;
        }
        Repo repo = repos.get(id);
        if (repo == null) {
            // Without a token the Hub cannot say whether the repo is private: 401. With one, a plain 404.
            error(ex, bearer(ex) == null ? 401 : 404, "RepoNotFound", "Repository not found", null);
            return;
        }
        String revision = decode(page.group(2));
        String commit = repo.commits.containsKey(revision) ? revision : repo.refs.get(revision);
        if (commit == null) {
            error(ex, 404, "RevisionNotFound", "Invalid rev id: " + revision, null);
            return;
        }
        if (page == api) {
            Thread.sleep(apiDelayMillis);
            ObjectNode info = new ObjectMapper().createObjectNode().put("id", id).put("sha", commit);
            ArrayNode siblings = info.putArray("siblings");
            for (String file : repo.commits.get(commit).keySet()) siblings.addObject().put("rfilename", file);
            send(ex, 200, info.toString().getBytes(StandardCharsets.UTF_8), "application/json");
        } else {
            resolve(ex, id, repo, commit, decode(page.group(3)));
        }
    }

    private void resolve(HttpExchange ex, String id, Repo repo, String commit, String file) throws IOException, InterruptedException {
        String token = bearer(ex);
        if (repo.grantedToken != null && !repo.grantedToken.equals(token)) {
            String message = "Access to model " + id + " is restricted. You must have access to it and be authenticated to access it.";
            error(ex, token == null ? 401 : 403, "GatedRepo", message, commit);
            return;
        }
        byte[] content = repo.commits.get(commit).get(file);
        if (content == null) {
            error(ex, 404, "EntryNotFound", file + " does not exist on \"" + commit + "\"", commit);
            return;
        }
        Headers out = ex.getResponseHeaders();
        out.set("X-Repo-Commit", commit);
        if (isLfs(file)) {
            String sha = sha256(content);
            cdnBlobs.put(sha, content);
            out.set("ETag", "\"" + gitSha1(("version https://git-lfs.github.com/spec/v1\noid sha256:" + sha + "\nsize " + content.length + "\n")
                    .getBytes(StandardCharsets.US_ASCII)) + "\"");
            out.set("X-Linked-Etag", "\"" + sha + "\"");
            out.set("X-Linked-Size", Long.toString(content.length));
            out.set("Location", "http://127.0.0.1:" + cdn.getAddress().getPort() + "/repos/" + sha + "?X-Amz-Signature=fake");
            ex.sendResponseHeaders(302, -1);
            return;
        }
        out.set("ETag", "\"" + gitSha1(content) + "\"");
        serve(ex, content);
    }

    private void cdn(HttpExchange ex, String path) throws IOException, InterruptedException {
        String sha = path.replaceFirst("^/repos/", "");
        byte[] content = cdnBlobs.get(sha);
        if (content == null) {
            error(ex, 404, null, "NoSuchKey", null);
            return;
        }
        if (corrupted.containsKey(sha)) {
            content = content.clone();
            content[content.length / 2] ^= 0x5a;
        }
        serve(ex, content);
    }

    /** The file's bytes, honouring {@code Range: bytes=N-}, with the faults asked for. */
    private void serve(HttpExchange ex, byte[] content) throws IOException, InterruptedException {
        Headers out = ex.getResponseHeaders();
        if (ex.getRequestMethod().equals("HEAD")) {
            out.set("Content-Length", Integer.toString(content.length));
            ex.sendResponseHeaders(200, -1);
            return;
        }
        String range = ex.getRequestHeaders().getFirst("Range");
        int start = 0;
        if (range != null && !ignoreRange) {
            Matcher m = Pattern.compile("bytes=(\\d+)-").matcher(range);
            if (!m.matches()) throw new IllegalStateException("unexpected Range " + range);
            start = Integer.parseInt(m.group(1));
            if (start >= content.length) {
                out.set("Content-Range", "bytes */" + content.length);
                ex.sendResponseHeaders(416, -1);
                return;
            }
            out.set("Content-Range", "bytes " + start + "-" + (content.length - 1) + "/" + content.length);
        }
        String path = ex.getRequestURI().getRawPath();
        boolean cut = path.endsWith(cutTarget) && cutsLeft.getAndUpdate(n -> Math.max(0, n - 1)) > 0;
        boolean stall = path.endsWith(stallTarget) && stallsLeft.getAndUpdate(n -> Math.max(0, n - 1)) > 0;
        ex.sendResponseHeaders(start > 0 ? 206 : 200, content.length - start);
        mostActiveTransfers.accumulateAndGet(activeTransfers.incrementAndGet(), Math::max);
        try {
            send(ex.getResponseBody(), content, start, cut, stall);
        } finally {
            activeTransfers.decrementAndGet();
        }
    }

    private void send(OutputStream body, byte[] content, int start, boolean cut, boolean stall) throws IOException, InterruptedException {
        long sent = 0;
        for (int at = start; at < content.length; ) {
            int n = Math.min(CHUNK, content.length - at);
            if (cut) n = (int) Math.min(n, cutAfter - sent);
            if (stall) n = (int) Math.min(n, stallAfter - sent);
            body.write(content, at, n);
            body.flush();
            at += n;
            sent += n;
            if (cut && sent >= cutAfter) return;  // closing short of Content-Length drops the connection
            if (stall && sent >= stallAfter) {
                Thread.sleep(stallMillis);
                stall = false;
            }
        }
    }

    private static void error(HttpExchange ex, int status, String code, String message, String commit) throws IOException {
        if (code != null) ex.getResponseHeaders().set("X-Error-Code", code);
        ex.getResponseHeaders().set("X-Error-Message", message);
        if (commit != null) ex.getResponseHeaders().set("X-Repo-Commit", commit);
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.sendResponseHeaders(status, -1);
            return;
        }
        send(ex, status, ("{\"error\":\"" + message.replace("\"", "\\\"") + "\"}").getBytes(StandardCharsets.UTF_8), "application/json");
    }

    private static void send(HttpExchange ex, int status, byte[] body, String type) throws IOException {
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, body.length);
        ex.getResponseBody().write(body);
    }

    private static String bearer(HttpExchange ex) {
        String auth = ex.getRequestHeaders().getFirst("Authorization");
        return auth != null && auth.startsWith("Bearer ") ? auth.substring("Bearer ".length()) : null;
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    private static MessageDigest digest(String name) {
        try {
            return MessageDigest.getInstance(name);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
