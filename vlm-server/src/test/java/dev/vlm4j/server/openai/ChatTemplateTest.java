package dev.vlm4j.server.openai;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link ChatTemplate} against Python's Jinja2 set up as transformers sets it up: real models' chat templates
 * (and vlm4j's fallback) rendered over conversations, expected outputs and raise_exception messages from
 * chat-templates/cases.json (made by chat-templates/make_cases.py).
 */
class ChatTemplateTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path TEMPLATES = resources();

    private static Path resources() {
        try {
            return Path.of(ChatTemplateTest.class.getResource("/chat-templates/cases.json").toURI()).getParent();
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String source(String name) throws IOException {
        if (name.equals("fallback")) {
            try (InputStream in = ChatTemplate.class.getResourceAsStream(ChatTemplate.FALLBACK)) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        }
        return Files.readString(TEMPLATES.resolve(name));
    }

    @TestFactory
    List<DynamicTest> rendersAsTransformersDoes() throws IOException {
        JsonNode root = JSON.readTree(TEMPLATES.resolve("cases.json").toFile());
        Map<String, String> tokens = JSON.convertValue(root.get("tokens"), new TypeReference<>() {});
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : root.get("cases")) {
            String name = c.get("template").asText();
            boolean addGenerationPrompt = c.get("add_generation_prompt").asBoolean();
            List<Map<String, Object>> messages = JSON.convertValue(c.get("messages"), new TypeReference<>() {});
            tests.add(DynamicTest.dynamicTest(name + ": " + c.get("title").asText() + (addGenerationPrompt ? " + generation prompt" : ""), () -> {
                ChatTemplate template = ChatTemplate.of(source(name), name, tokens);
                if (c.has("error")) {
                    ApiException e = assertThrows(ApiException.class, () -> template.render(messages, addGenerationPrompt));
                    assertEquals(400, e.status());
                    assertEquals("the chat template refused the conversation: " + c.get("error").asText(), e.getMessage());
                } else {
                    assertEquals(c.get("expected").asText(), template.render(messages, addGenerationPrompt));
                }
            }));
        }
        return tests;
    }

    @Test
    void templatesThatReadContentPartsAreToldApartFromThoseThatReadStrings() throws IOException {
        for (String parts : List.of("llava-1.5-7b-hf.jinja", "llava-v1.6-mistral-7b-hf.jinja", "qwen2-vl-2b-instruct.jinja")) {
            assertEquals(ChatTemplate.ContentFormat.PARTS, ChatTemplate.of(source(parts), parts, Map.of()).contentFormat(), parts);
        }
        for (String string : List.of("llama-2-7b-chat-hf.jinja", "llama-3-8b-instruct.jinja", "mixtral-8x7b-instruct.jinja", "fallback")) {
            assertEquals(ChatTemplate.ContentFormat.STRING, ChatTemplate.of(source(string), string, Map.of()).contentFormat(), string);
        }
    }

    @Test
    void theModelsOwnTemplateComesFirstThenTokenizerConfigThenTheFallback(@TempDir Path dir) throws IOException {
        Map<String, String> tokens = Map.of("eos_token", "</s>");
        assertTrue(ChatTemplate.load(null, dir, tokens, JSON).origin().contains("LLaVA-1.5"));

        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
                + " {\"name\": \"default\", \"template\": \"from config\"}]}");
        assertEquals("from config", ChatTemplate.load(null, dir, tokens, JSON).render(List.of(), true));

        Files.writeString(dir.resolve("chat_template.json"), "{\"chat_template\": \"from json\"}");
        assertEquals("from json", ChatTemplate.load(null, dir, tokens, JSON).render(List.of(), true));

        Files.writeString(dir.resolve("chat_template.jinja"), "from jinja");
        assertEquals("from jinja", ChatTemplate.load(null, dir, tokens, JSON).render(List.of(), true));

        Path override = Files.writeString(dir.resolve("mine.jinja"), "{{ messages | length }} from --chat-template");
        assertEquals("0 from --chat-template", ChatTemplate.load(override.toString(), dir, tokens, JSON).render(List.of(), true));
        assertEquals("inline", ChatTemplate.load("{{ 'inline' }}", dir, tokens, JSON).render(List.of(), true));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ChatTemplate.load(dir.resolve("missing.jinja").toString(), dir, tokens, JSON));
        assertTrue(e.getMessage().contains("no such file"), e.getMessage());
    }

    @Test
    void aTemplateJinjavaCannotRenderFailsNamingTheTemplate() {
        ChatTemplate broken = ChatTemplate.of("{{ messages[0]['content'].casefold() }}", "broken.jinja", Map.of());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> broken.render(List.of(Map.of("role", "user", "content", "x")), true));
        assertTrue(e.getMessage().contains("broken.jinja") && e.getMessage().contains("casefold"), e.getMessage());
    }
}
