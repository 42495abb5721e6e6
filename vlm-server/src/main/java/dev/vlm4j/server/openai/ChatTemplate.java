package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import jinjava.javax.el.CompositeELResolver;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A model's chat template, rendered as transformers renders it ({@code apply_chat_template}): Jinja with
 * trim_blocks and lstrip_blocks, the {@code raise_exception} and {@code strftime_now} globals, the
 * {@code {% generation %}} block, and Python's string methods. HubSpot's Jinjava does the rendering.
 *
 * <p>Where it comes from, first found: {@code --chat-template}; the tokenizer directory's
 * {@code chat_template.jinja}, {@code chat_template.json}, or tokenizer_config.json's {@code chat_template}; else
 * LLaVA-1.5's conversation format ({@code "USER: <image>\n… ASSISTANT:"}).
 */
final class ChatTemplate {

    /** How the template reads a message's content: as one string, or as a list of typed parts. */
    enum ContentFormat { STRING, PARTS }

    /** vLLM-style detection: a template that loops over or indexes into the content reads parts. */
    private static final Pattern READS_PARTS = Pattern.compile(
            "for\\s+\\w+\\s+in\\s+[\\w.]*\\[?['\"]?content['\"]?\\]?|content['\"]?\\]?\\s*\\[\\s*\\d|content['\"]?\\]?\\s*\\|\\s*selectattr");

    static final String FALLBACK = "llava-1.5-fallback.jinja";

    private final String source;
    private final String origin;
    private final ContentFormat contentFormat;
    private final Map<String, Object> specialTokens;
    private final Jinjava jinjava;

    private ChatTemplate(String source, String origin, Map<String, String> specialTokens) {
        this.source = source;
        this.origin = origin;
        this.contentFormat = READS_PARTS.matcher(source).find() ? ContentFormat.PARTS : ContentFormat.STRING;
        this.specialTokens = Map.copyOf(specialTokens);
        this.jinjava = jinjava();
    }

    /**
     * A template from its source.
     *
     * @param origin        where it came from, for messages
     * @param specialTokens the tokenizer's {@code bos_token}, {@code eos_token}, … by those names
     */
    static ChatTemplate of(String source, String origin, Map<String, String> specialTokens) {
        return new ChatTemplate(source, origin, specialTokens);
    }

    /**
     * The template to serve with: {@code override} (a file: .jinja text or a JSON with "chat_template"; or the
     * template itself) when given, else the tokenizer directory's, else LLaVA-1.5's format.
     */
    static ChatTemplate load(String override, Path tokenizerDir, Map<String, String> specialTokens, ObjectMapper json) {
        try {
            if (override != null) {
                Path file = Path.of(override);
                if (Files.isRegularFile(file)) return of(fromFile(file, json), file.toString(), specialTokens);
                if (!override.contains("{%") && !override.contains("{{")) {
                    throw new IllegalArgumentException("--chat-template " + override + ": no such file, and not a template either");
                }
                return of(override, "--chat-template", specialTokens);
            }
            Optional<ChatTemplate> own = fromDirectory(tokenizerDir, specialTokens, json);
            if (own.isPresent()) return own.get();
            try (InputStream in = ChatTemplate.class.getResourceAsStream(FALLBACK)) {
                if (in == null) throw new IllegalStateException("the fallback chat template " + FALLBACK + " is missing from the jar");
                return of(new String(in.readAllBytes(), StandardCharsets.UTF_8), "LLaVA-1.5's conversation format (the model has no chat template)",
                        specialTokens);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the chat template: " + e.getMessage(), e);
        }
    }

    private static Optional<ChatTemplate> fromDirectory(Path dir, Map<String, String> specialTokens, ObjectMapper json) throws IOException {
        Path jinja = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) return Optional.of(of(Files.readString(jinja), jinja.toString(), specialTokens));
        Path jsonFile = dir.resolve("chat_template.json");
        if (Files.isRegularFile(jsonFile)) return Optional.of(of(fromFile(jsonFile, json), jsonFile.toString(), specialTokens));
        Path config = dir.resolve("tokenizer_config.json");
        if (Files.isRegularFile(config)) {
            String template = templateField(json.readTree(config.toFile()), config);
            if (template != null) return Optional.of(of(template, config + " (chat_template)", specialTokens));
        }
        return Optional.empty();
    }

    /** A .json file's {@code chat_template}, or the file's text. */
    private static String fromFile(Path file, ObjectMapper json) throws IOException {
        String text = Files.readString(file);
        if (!file.getFileName().toString().endsWith(".json")) return text;
        String template = templateField(json.readTree(text), file);
        if (template == null) throw new IllegalArgumentException(file + " has no \"chat_template\"");
        return template;
    }

    /** {@code chat_template}: a string, or a list of named templates of which "default" is taken. */
    private static String templateField(JsonNode root, Path file) {
        JsonNode t = root.path("chat_template");
        if (t.isTextual()) return t.textValue();
        if (t.isArray()) {
            for (JsonNode named : t) if (named.path("name").asText().equals("default")) return named.path("template").asText(null);
            throw new IllegalArgumentException(file + " lists named chat templates but none is called \"default\"");
        }
        return null;
    }

    ContentFormat contentFormat() {
        return contentFormat;
    }

    String origin() {
        return origin;
    }

    /**
     * Renders a conversation. A template's {@code raise_exception} is a 400 with its message; a template that
     * Jinjava cannot render is a 500 naming the template.
     */
    String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        Map<String, Object> bindings = new HashMap<>(specialTokens);
        bindings.put("messages", messages);
        bindings.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result = jinjava.renderForResult(source, bindings);
        for (TemplateError error : result.getErrors()) {
            String raised = raisedMessage(error.getException());
            if (raised != null) throw ApiException.badRequest("the chat template refused the conversation: " + raised, "messages");
        }
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new IllegalStateException("the chat template (" + origin + ") failed: " + error.getMessage()
                        + " (line " + error.getLineno() + "); pass another with --chat-template");
            }
        }
        return result.getOutput();
    }

    private static String raisedMessage(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof JinjaFunctions.Raised raised) return raised.getMessage();
        }
        return null;
    }

    private static Jinjava jinjava() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonStringMethods());
        resolver.add(JinjavaConfig.newBuilder().build().getElResolver());
        Jinjava jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).withElResolver(resolver).build());
        jinjava.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "raise_exception", JinjaFunctions.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "strftime_now", JinjaFunctions.class, "strftimeNow", String.class));
        jinjava.getGlobalContext().registerTag(new GenerationTag());
        return jinjava;
    }
}
