package dev.vlm4j.server;

import dev.vlm4j.server.bench.LatencyCommand;
import dev.vlm4j.server.bench.PreprocessCommand;
import dev.vlm4j.server.bench.ThroughputCommand;
import dev.vlm4j.server.bench.VisionCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code vlm bench}: benchmarks that mirror vLLM's benchmark scripts. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks, with vLLM's benchmark flags.",
        subcommands = {LatencyCommand.class, ThroughputCommand.class, VisionCommand.class, PreprocessCommand.class})
final class BenchCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
    }
}
