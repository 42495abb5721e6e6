package dev.vlm4j.server;

import dev.vlm4j.server.openai.ServerConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import static org.junit.jupiter.api.Assertions.*;

/** {@code vlm serve}'s flags, with vLLM's names, reach the server's settings; the defaults are the documented ones. */
class ServeCommandTest {

    private static ServerConfig parse(String... args) {
        ServeCommand serve = new ServeCommand();
        new CommandLine(serve).parseArgs(args);
        return serve.serverConfig(serve.engine.engineArgs());
    }

    @Test
    void defaultsServeTheModelUnderItsPathOnLoopback() {
        ServerConfig c = parse("--model", "/models/llava");
        assertEquals("127.0.0.1", c.host());
        assertEquals(8000, c.port());
        assertEquals(List.of("/models/llava"), c.servedModelNames());
        assertEquals(Set.of(), c.allowedMediaDomains());
        assertNull(c.allowedLocalMediaPath());
        assertNull(c.chatTemplate());
        assertEquals(ServerConfig.DEFAULT_MAX_WAITING_REQUESTS, c.maxWaitingRequests());
        assertEquals(32L << 20, c.maxBodyBytes());
        assertEquals(Duration.ofSeconds(5), c.mediaFetchTimeout());
        assertEquals(20 << 20, c.maxMediaBytes());
    }

    @Test
    void everyFlagReachesTheSettings() {
        ServerConfig c = parse("--model", "/models/llava", "--host", "0.0.0.0", "--port", "9000", "--api-key", "k",
                "--served-model-name", "llava,llava-1.5", "--chat-template", "t.jinja",
                "--allowed-media-domains", "a.example", "b.example", "--allowed-local-media-path", "/srv/media",
                "--max-waiting-requests", "7", "--max-request-body-mb", "2", "--media-fetch-timeout", "3", "--max-media-mb", "4",
                "--cpu-kvcache-space", "1");
        assertEquals("0.0.0.0", c.host());
        assertEquals(9000, c.port());
        assertEquals("k", c.apiKey());
        assertEquals(List.of("llava", "llava-1.5"), c.servedModelNames());
        assertEquals("t.jinja", c.chatTemplate());
        assertEquals(Set.of("a.example", "b.example"), c.allowedMediaDomains());
        assertEquals(Path.of("/srv/media"), c.allowedLocalMediaPath());
        assertEquals(7, c.maxWaitingRequests());
        assertEquals(2L << 20, c.maxBodyBytes());
        assertEquals(Duration.ofSeconds(3), c.mediaFetchTimeout());
        assertEquals(4 << 20, c.maxMediaBytes());
    }

    @Test
    void aBadValueSaysWhichFlag() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> parse("--model", "/m", "--port", "70000"));
        assertTrue(e.getMessage().contains("--port"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> parse("--model", "/m", "--max-waiting-requests", "-1"));
        assertTrue(e.getMessage().contains("--max-waiting-requests"), e.getMessage());
    }
}
