package dev.vlm4j.model;

import java.nio.file.Path;

/** A weight file or shard index that is malformed, truncated or hostile; the message names the file and what is wrong. */
public final class CheckpointFormatException extends IllegalArgumentException {

    public CheckpointFormatException(Path file, String problem) {
        super(file + ": " + problem);
    }

    public CheckpointFormatException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
