package dev.vlm4j.hub;

/**
 * A model could not be found, fetched or trusted. The message names the repo, the revision and, where one file is at
 * fault, the file, and says what to do; {@link #kind()} tells the cases apart for callers.
 */
public final class HubException extends RuntimeException {

    /** What went wrong; the 404 kinds follow the Hub's {@code X-Error-Code} header. */
    public enum Kind {
        /** 401: the repo does not exist, or is private or gated and no valid token was sent. */
        UNAUTHORIZED,
        /** 403, or the Hub's {@code GatedRepo}: the token's account has no access (licence not accepted, or too few rights). */
        GATED,
        /** {@code RepoNotFound}: no such repo. */
        REPO_NOT_FOUND,
        /** {@code RevisionNotFound}: the repo has no such branch, tag or commit. */
        REVISION_NOT_FOUND,
        /** {@code EntryNotFound}, or a file the model needs is not in the repo. */
        ENTRY_NOT_FOUND,
        /** No answer, or a silence mid-transfer, longer than the configured timeout. */
        TIMEOUT,
        /** The connection failed or was cut. */
        CONNECTION,
        /** The bytes received do not hash to the Hub's ETag, or have the wrong size. */
        CHECKSUM_MISMATCH,
        /** {@code HF_HUB_OFFLINE} is set and the cache lacks a file. */
        OFFLINE,
        /** Any other HTTP failure, or an answer that does not look like the Hub's. */
        HTTP
    }

    private final Kind kind;
    private final String repo;
    private final String revision;
    private final String file;

    /**
     * @param file   the file at fault, or null when the failure concerns the whole repo or revision
     * @param detail what happened and what to do; the repo, revision and file are appended to it
     */
    public HubException(Kind kind, String repo, String revision, String file, String detail, Throwable cause) {
        super(detail + " [repo " + repo + ", revision " + revision + (file == null ? "" : ", file " + file) + "]", cause);
        this.kind = kind;
        this.repo = repo;
        this.revision = revision;
        this.file = file;
    }

    public Kind kind() {
        return kind;
    }

    public String repo() {
        return repo;
    }

    public String revision() {
        return revision;
    }

    /** The file at fault, or null. */
    public String file() {
        return file;
    }
}
