package dev.vlm4j.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A Hugging Face tokenizer read from a model directory's {@code tokenizer.json} and
 * {@code tokenizer_config.json}, run by DJL's binding of the Rust {@code tokenizers} library
 * (what transformers' fast tokenizers run, and so what vLLM runs).
 *
 * <p>Encoding never truncates or pads: DJL would otherwise cut every input at 512 tokens, and a
 * LLaVA prompt alone holds 576 image tokens. Special tokens are added the way transformers'
 * {@code LlamaTokenizerFast} adds them: BOS when {@code add_bos_token} (default: true when the
 * config names a bos_token), EOS when {@code add_eos_token} (default false); the tokenizer.json
 * post-processor is not used.
 *
 * <p>"Special" means an added token marked {@code "special": true} in tokenizer.json (llava-hf's
 * {@code <s>}, {@code </s>}, {@code <unk>}, {@code <image>}, {@code <pad>}): exactly the tokens
 * {@link #decode} drops when asked to skip special tokens.
 *
 * <p>Encoding and decoding may run on several threads at once. {@link #close()} frees the native
 * tokenizer; call it once no thread uses the tokenizer any more.
 */
public final class Tokenizer implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final HuggingFaceTokenizer library;
    private final Vocabulary vocabulary;
    private final TokenizerConfig config;
    private final int bosId;
    private final int eosId;
    private final int padId;
    private final int unkId;
    private final Set<Integer> specialIds;

    private Tokenizer(HuggingFaceTokenizer library, Vocabulary vocabulary, TokenizerConfig config, Path configFile)
            throws IOException {
        this.library = library;
        this.vocabulary = vocabulary;
        this.config = config;
        this.bosId = configuredId(config.bosToken(), "bos_token", configFile);
        this.eosId = configuredId(config.eosToken(), "eos_token", configFile);
        this.padId = configuredId(config.padToken(), "pad_token", configFile);
        this.unkId = configuredId(config.unkToken(), "unk_token", configFile);
        this.specialIds = Collections.unmodifiableSet(new TreeSet<>(vocabulary.special().stream().boxed().toList()));
        if (config.addBosToken() && bosId < 0) {
            throw new IOException(configFile + " sets add_bos_token but names no bos_token");
        }
        if (config.addEosToken() && eosId < 0) {
            throw new IOException(configFile + " sets add_eos_token but names no eos_token");
        }
    }

    /**
     * Loads the tokenizer of a Hugging Face model directory.
     *
     * @throws IOException when tokenizer.json or tokenizer_config.json is missing, unreadable or
     *                     malformed; the message names the file
     */
    public static Tokenizer load(Path modelDir) throws IOException {
        Path tokenizerFile = modelDir.resolve("tokenizer.json");
        Path configFile = modelDir.resolve("tokenizer_config.json");
        byte[] tokenizerJson = readRequired(tokenizerFile);
        Vocabulary vocabulary = Vocabulary.parse(parseJson(tokenizerJson, tokenizerFile), tokenizerFile);
        TokenizerConfig config = TokenizerConfig.parse(parseJson(readRequired(configFile), configFile));
        HuggingFaceTokenizer library = openLibrary(tokenizerJson, tokenizerFile);
        try {
            return new Tokenizer(library, vocabulary, config, configFile);
        } catch (IOException | RuntimeException e) {
            library.close();
            throw e;
        }
    }

    /** Token ids of {@code text}, with BOS/EOS added as tokenizer_config.json says. */
    public int[] encode(String text) {
        long[] body = library.encode(text, false, false).getIds();
        int bos = config.addBosToken() ? 1 : 0;
        int eos = config.addEosToken() ? 1 : 0;
        int[] ids = new int[bos + body.length + eos];
        if (bos == 1) {
            ids[0] = bosId;
        }
        for (int i = 0; i < body.length; i++) {
            ids[bos + i] = Math.toIntExact(body[i]);
        }
        if (eos == 1) {
            ids[ids.length - 1] = eosId;
        }
        return ids;
    }

    /**
     * The text of {@code ids}, as HF tokenizers' {@code decode}. Ids at or above {@link #vocabSize()}
     * (a model's padded embedding rows) decode to nothing, as there.
     *
     * @throws IllegalArgumentException for a negative id
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] wide = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0) {
                throw new IllegalArgumentException("token id " + ids[i] + " at index " + i + " is negative");
            }
            wide[i] = ids[i];
        }
        return library.decode(wide, skipSpecialTokens);
    }

    /** The id of a token string (e.g. {@code "▁hello"}, {@code "<image>"}), or -1 when the vocabulary lacks it. */
    public int tokenToId(String token) {
        return vocabulary.ids().getOrDefault(token, -1);
    }

    /**
     * The token string of an id, as transformers' {@code convert_ids_to_tokens} ({@code "▁hello"}, {@code "<0x0A>"}).
     *
     * @throws IllegalArgumentException when no token has this id
     */
    public String idToToken(int id) {
        String token = vocabulary.tokens().get(id);
        if (token == null) {
            throw new IllegalArgumentException("no token has id " + id + " (vocabulary size " + vocabSize() + ")");
        }
        return token;
    }

    /** Number of token ids, added tokens included: every token id is below it. */
    public int vocabSize() {
        return vocabulary.size();
    }

    /** Whether {@code id} is an added token marked special. */
    public boolean isSpecial(int id) {
        return id >= 0 && vocabulary.special().get(id);
    }

    /** Ids of all added tokens marked special, ascending. */
    public Set<Integer> allSpecialIds() {
        return specialIds;
    }

    /** Id of tokenizer_config.json's bos_token, or -1 when it names none. */
    public int bosId() {
        return bosId;
    }

    /** Id of tokenizer_config.json's eos_token, or -1 when it names none. */
    public int eosId() {
        return eosId;
    }

    /** Id of tokenizer_config.json's pad_token, or -1 when it names none. */
    public int padId() {
        return padId;
    }

    /** Id of tokenizer_config.json's unk_token, or -1 when it names none. */
    public int unkId() {
        return unkId;
    }

    @Override
    public void close() {
        library.close();
    }

    private int configuredId(String token, String key, Path configFile) throws IOException {
        if (token == null) {
            return -1;
        }
        int id = tokenToId(token);
        if (id < 0) {
            throw new IOException(configFile + ": " + key + " \"" + token + "\" is not in tokenizer.json's vocabulary");
        }
        return id;
    }

    private static byte[] readRequired(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("missing " + file + ": a Hugging Face model directory needs tokenizer.json and tokenizer_config.json");
        }
        return Files.readAllBytes(file);
    }

    private static JsonNode parseJson(byte[] content, Path file) throws IOException {
        try {
            JsonNode root = JSON.readTree(content);
            if (root == null || !root.isObject()) {
                throw new IOException("malformed " + file + ": expected a JSON object");
            }
            return root;
        } catch (JacksonException e) {
            throw new IOException("malformed " + file + ": " + e.getOriginalMessage(), e);
        }
    }

    private static HuggingFaceTokenizer openLibrary(byte[] tokenizerJson, Path file) throws IOException {
        keepNativeLibraryLocal();
        Map<String, String> options = Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false");
        try {
            return HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(tokenizerJson), options);
        } catch (RuntimeException e) {
            throw new IOException("HF tokenizers cannot load " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * DJL picks a CUDA build of its native tokenizer when it sees a GPU and downloads it, and reports
     * usage from EC2 hosts. Tokenizing runs on the CPU and vlm4j must work offline, so unless the user
     * chose otherwise (environment or system property), use the CPU library bundled in the jar and
     * send nothing.
     */
    private static void keepNativeLibraryLocal() {
        for (var setting : Map.of("RUST_FLAVOR", "cpu", "OPT_OUT_TRACKING", "true").entrySet()) {
            if (System.getenv(setting.getKey()) == null && System.getProperty(setting.getKey()) == null) {
                System.setProperty(setting.getKey(), setting.getValue());
            }
        }
    }
}
