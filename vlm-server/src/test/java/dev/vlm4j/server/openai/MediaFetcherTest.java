package dev.vlm4j.server.openai;

import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Set;
import java.util.concurrent.Executors;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link MediaFetcher}'s rules: data URLs decoded, http(s) only from allowed hosts (a JDK HTTP server on loopback
 * plays the web), within the time and size limits and without following redirects; files only under the
 * allowed directory, with {@code ..} and symbolic links out of it refused.
 */
class MediaFetcherTest {

    private static final byte[] IMAGE = bytes();
    private static HttpServer web;

    private static byte[] bytes() {
        try {
            return Files.readAllBytes(TinyServer.testdata().resolve("images/fmt_rgb.png"));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @BeforeAll
    static void startWeb() throws IOException {
        web = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        web.createContext("/image.png", exchange -> {
            exchange.sendResponseHeaders(200, IMAGE.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(IMAGE);
            }
        });
        web.createContext("/big-unannounced", exchange -> {
            exchange.sendResponseHeaders(200, 0); // chunked: no Content-Length to check up front
            try (OutputStream out = exchange.getResponseBody()) {
                for (int i = 0; i < 64; i++) out.write(new byte[1024]);
            } catch (IOException clientGaveUp) {
                // the fetcher stops reading past its limit
            }
        });
        web.createContext("/slow", exchange -> {
            try {
                Thread.sleep(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            exchange.sendResponseHeaders(200, IMAGE.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(IMAGE);
            } catch (IOException clientGaveUp) {
                // expected: the fetcher timed out
            }
        });
        web.createContext("/redirect", exchange -> {
            exchange.getResponseHeaders().add("Location", "http://example.com/image.png");
            exchange.sendResponseHeaders(302, -1);
            exchange.close();
        });
        web.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        web.start();
    }

    @AfterAll
    static void stopWeb() {
        web.stop(0);
    }

    private static String url(String path) {
        return "http://127.0.0.1:" + web.getAddress().getPort() + path;
    }

    private static MediaFetcher fetcher(Set<String> domains, Path localRoot) {
        return new MediaFetcher(domains, localRoot, Duration.ofMillis(500), 16 * 1024);
    }

    private static void refused(MediaFetcher media, String url, String... inMessage) {
        ApiException e = assertThrows(ApiException.class, () -> media.fetch(url, "messages[0].content[0].image_url"));
        assertEquals(400, e.status());
        assertTrue(e.getMessage().startsWith("messages[0].content[0].image_url: "), e.getMessage());
        for (String s : inMessage) assertTrue(e.getMessage().contains(s), "\"" + s + "\" not in: " + e.getMessage());
    }

    @Test
    void dataUrlsAreDecoded() {
        MediaFetcher media = fetcher(Set.of(), null);
        assertArrayEquals(IMAGE, media.fetch("data:image/png;base64," + Base64.getEncoder().encodeToString(IMAGE), "x"));
        refused(media, "data:image/png,rawbytes", "base64");
        refused(media, "data:text/plain;base64,aGk=", "image/");
        refused(media, "data:image/png;base64,%%%", "not valid base64");
        refused(media, "data:image/png;base64," + Base64.getEncoder().encodeToString(new byte[20_000]), "larger than", "16384 bytes");
    }

    @Test
    void httpUrlsComeOnlyFromAllowedHostsWithinTheLimits() {
        MediaFetcher allowed = fetcher(Set.of("127.0.0.1"), null);
        assertArrayEquals(IMAGE, allowed.fetch(url("/image.png"), "x"));
        refused(fetcher(Set.of(), null), url("/image.png"), "--allowed-media-domains 127.0.0.1");
        refused(fetcher(Set.of("example.com"), null), url("/image.png"), "127.0.0.1 is not allowed", "[example.com]");
        refused(allowed, url("/image.png").replace("127.0.0.1", "localhost"), "localhost is not allowed");
        refused(allowed, url("/big-unannounced"), "larger than");
        refused(allowed, url("/slow"), "longer than 500 ms");
        refused(allowed, url("/redirect"), "HTTP 302");
        refused(allowed, "ftp://127.0.0.1/image.png", "data:, http(s): or file:");
    }

    @Test
    void localFilesComeOnlyFromUnderTheAllowedDirectory(@TempDir Path tmp) throws IOException {
        Path allowedDir = Files.createDirectories(tmp.resolve("media"));
        Path inside = Files.write(allowedDir.resolve("in.png"), IMAGE);
        Path outside = Files.write(tmp.resolve("secret.png"), IMAGE);
        Path linkOut = Files.createSymbolicLink(allowedDir.resolve("link.png"), outside);
        Path linkIn = Files.createSymbolicLink(allowedDir.resolve("alias.png"), inside);

        MediaFetcher media = fetcher(Set.of(), allowedDir);
        assertArrayEquals(IMAGE, media.fetch(inside.toUri().toString(), "x"));
        assertArrayEquals(IMAGE, media.fetch(linkIn.toUri().toString(), "x"));
        refused(media, outside.toUri().toString(), "outside --allowed-local-media-path");
        refused(media, "file://" + allowedDir + "/../secret.png", "outside --allowed-local-media-path");
        refused(media, linkOut.toUri().toString(), "outside --allowed-local-media-path");
        refused(media, allowedDir.resolve("missing.png").toUri().toString(), "no such file");
        refused(fetcher(Set.of(), null), inside.toUri().toString(), "--allowed-local-media-path DIR");
        Files.write(allowedDir.resolve("big.png"), new byte[20_000]);
        refused(media, allowedDir.resolve("big.png").toUri().toString(), "larger than");
    }
}
