package dev.vlm4j.server;

import dev.vlm4j.hub.HubException;
import java.io.IOException;
import java.io.UncheckedIOException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code vlm} command line. Logs and errors go to stderr; results to stdout. */
@Command(name = "vlm", mixinStandardHelpOptions = true, version = "vlm4j 0.1.0-SNAPSHOT",
        description = "Run Vision Language Models from Java, the way vLLM does from Python.",
        subcommands = {
                DemoCommand.class,
                GenerateCommand.class,
                TokenizeCommand.class,
                PreprocessCommand.class,
                RandomCheckpointCommand.class,
                BenchCommand.class,
                ServeCommand.class,
                CommandLine.HelpCommand.class,
        })
public final class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The command line with vlm's error handling: a bad input prints one line that says what to fix. */
    static CommandLine commandLine() {
        return new CommandLine(new Main()).setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof IllegalArgumentException || e instanceof UnsupportedOperationException
                    || e instanceof IOException || e instanceof UncheckedIOException || e instanceof HubException) {
                cmd.getErr().println("vlm " + cmd.getCommandName() + ": error: " + e.getMessage());
                return 2;
            }
            throw e;
        });
    }
}
