package dev.vlm4j.hub;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The environment variables as huggingface_hub's constants.py reads them. */
class HubSettingsTest {

    @TempDir
    Path tmp;

    private final Path home = Path.of(System.getProperty("user.home"));

    @Test
    void theCacheIsHfHubCacheElseHfHomeHubElseXdgElseHome() {
        // A token file that cannot exist, so the real login of whoever runs the tests is never read.
        String noToken = tmp.resolve("no-token").toString();
        assertEquals(Path.of("/c/hub-cache"), settings(Map.of("HF_HUB_CACHE", "/c/hub-cache", "HF_HOME", "/c/home", "HF_TOKEN_PATH", noToken)).cacheDir());
        assertEquals(Path.of("/c/legacy"), settings(Map.of("HUGGINGFACE_HUB_CACHE", "/c/legacy", "HF_HOME", "/c/home", "HF_TOKEN_PATH", noToken)).cacheDir());
        assertEquals(Path.of("/c/home/hub"), settings(Map.of("HF_HOME", "/c/home", "XDG_CACHE_HOME", "/c/xdg")).cacheDir());
        assertEquals(Path.of("/c/xdg/huggingface/hub"), settings(Map.of("XDG_CACHE_HOME", "/c/xdg")).cacheDir());
        assertEquals(home.resolve(".cache/huggingface/hub"), settings(Map.of("HF_TOKEN_PATH", noToken)).cacheDir());
        assertEquals(home.resolve("models/hub"), settings(Map.of("HF_HOME", "~/models", "HF_TOKEN_PATH", noToken)).cacheDir());
    }

    @Test
    void offlineTakesHuggingFaceHubsTrueValues() {
        for (String yes : new String[] {"1", "ON", "yes", "True"}) assertTrue(settings(Map.of("HF_HUB_OFFLINE", yes, "HF_HOME", tmp.toString())).offline(), yes);
        for (String no : new String[] {"0", "off", "", "nope"}) assertFalse(settings(Map.of("HF_HUB_OFFLINE", no, "HF_HOME", tmp.toString())).offline(), no);
        assertTrue(settings(Map.of("TRANSFORMERS_OFFLINE", "1", "HF_HOME", tmp.toString())).offline());
    }

    @Test
    void theTokenIsHfTokenElseTheSavedLogin() throws IOException {
        assertNull(settings(Map.of("HF_HOME", tmp.toString())).token());
        Files.writeString(tmp.resolve("token"), "hf_saved\n");
        assertEquals("hf_saved", settings(Map.of("HF_HOME", tmp.toString())).token());
        assertEquals("hf_env", settings(Map.of("HF_HOME", tmp.toString(), "HF_TOKEN", "hf_env")).token());
        assertEquals("hf_arg", settings(Map.of("HF_HOME", tmp.toString(), "HF_TOKEN", "hf_env")).withToken("hf_arg").token());
        assertFalse(settings(Map.of("HF_HOME", tmp.toString(), "HF_TOKEN", "hf_secret")).toString().contains("hf_secret"));
    }

    @Test
    void theEndpointAndTimeoutsAreRead() {
        HubSettings s = settings(Map.of("HF_HOME", tmp.toString()));
        assertEquals("https://huggingface.co", s.endpoint());
        assertEquals(Duration.ofSeconds(10), s.metadataTimeout());
        assertEquals(Duration.ofSeconds(10), s.downloadTimeout());
        s = settings(Map.of("HF_HOME", tmp.toString(), "HF_ENDPOINT", "https://hf-mirror.example/", "HF_HUB_ETAG_TIMEOUT", "3",
                "HF_HUB_DOWNLOAD_TIMEOUT", "60"));
        assertEquals("https://hf-mirror.example", s.endpoint());
        assertEquals(Duration.ofSeconds(3), s.metadataTimeout());
        assertEquals(Duration.ofSeconds(60), s.downloadTimeout());
    }

    @Test
    void badValuesAreRefusedSayingWhatToFix() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> settings(Map.of("HF_HOME", tmp.toString(), "HF_HUB_ETAG_TIMEOUT", "soon")));
        assertTrue(e.getMessage().contains("HF_HUB_ETAG_TIMEOUT must be a positive whole number of seconds"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> settings(Map.of("HF_HOME", tmp.toString(), "HF_ENDPOINT", "huggingface.co")));
        assertTrue(e.getMessage().contains("HF_ENDPOINT must be an http(s) URL"), e.getMessage());
    }

    @Test
    void repoIdsFollowTheHubsRules() {
        assertTrue(RepoId.isValid("llava-hf/llava-1.5-7b-hf"));
        assertTrue(RepoId.isValid("gpt2"));
        for (String bad : new String[] {"a/b/c", "a--b/c", "a/../b", "../x", "/abs", "a/b.", "x y/z", "a".repeat(97)}) {
            assertFalse(RepoId.isValid(bad), bad);
        }
        assertEquals("models--llava-hf--llava-1.5-7b-hf", new RepoId("llava-hf/llava-1.5-7b-hf").cacheFolderName());
    }

    private static HubSettings settings(Map<String, String> env) {
        return HubSettings.fromEnvironment(env);
    }
}
