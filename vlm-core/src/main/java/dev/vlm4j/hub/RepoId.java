package dev.vlm4j.hub;

import java.util.regex.Pattern;

/**
 * A Hub model repository id, {@code name} or {@code namespace/name}, checked with the Hub's rules (letters, digits,
 * {@code - _ .}; no {@code --} or {@code ..}; at most 96 characters) so that it is safe as a cache folder name.
 */
public record RepoId(String id) {

    private static final Pattern VALID = Pattern.compile("([\\w.\\-]+/)?[\\w.\\-]+");
    private static final int MAX_LENGTH = 96;

    public RepoId {
        if (!isValid(id)) {
            throw new IllegalArgumentException("'" + id + "' is not a Hugging Face repo id: expected 'namespace/name' (letters, digits,"
                    + " '-', '_', '.'; no '--' or '..'; at most " + MAX_LENGTH + " characters), or an existing local directory");
        }
    }

    public static boolean isValid(String id) {
        return id != null && id.length() <= MAX_LENGTH && VALID.matcher(id).matches() && !id.contains("--") && !id.contains("..")
                && !id.startsWith(".") && !id.endsWith(".") && !id.contains("/.") && !id.contains("./");
    }

    /** The folder huggingface_hub keeps this model in: {@code models--namespace--name}. */
    public String cacheFolderName() {
        return "models--" + id.replace("/", "--");
    }

    @Override
    public String toString() {
        return id;
    }
}
