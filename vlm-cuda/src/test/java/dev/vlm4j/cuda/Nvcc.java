package dev.vlm4j.cuda;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The CUDA compiler for tests that need no GPU: found through CUDA_HOME, CUDA_PATH, PATH or /usr/local/cuda. */
final class Nvcc {

    private Nvcc() {}

    /** nvcc's path, or null when it is not installed. */
    static Path find() {
        List<Path> candidates = new ArrayList<>();
        for (String var : List.of("CUDA_HOME", "CUDA_PATH")) {
            String home = System.getenv(var);
            if (home != null && !home.isBlank()) candidates.add(Path.of(home, "bin", "nvcc"));
        }
        for (String dir : Objects.requireNonNullElse(System.getenv("PATH"), "").split(":")) {
            if (!dir.isEmpty()) candidates.add(Path.of(dir, "nvcc"));
        }
        candidates.add(Path.of("/usr/local/cuda/bin/nvcc"));
        return candidates.stream().filter(Files::isExecutable).findFirst().orElse(null);
    }

    /** A finished process: its exit status and its output (stdout and stderr together). */
    record Result(int exitValue, String output) {}

    /** Runs {@code command}, skipping the test if it takes over 5 minutes. */
    static Result run(List<String> command) throws Exception {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), UTF_8);
        assumeTrue(process.waitFor(5, TimeUnit.MINUTES), command.getFirst() + " took over 5 minutes");
        return new Result(process.exitValue(), output);
    }
}
