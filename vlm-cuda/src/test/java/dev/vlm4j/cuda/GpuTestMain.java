package dev.vlm4j.cuda;

import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.engine.discovery.ClassNameFilter;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

import java.io.PrintWriter;

/**
 * Runs this module's tests, GPU ones included, where there is a JRE but no Maven (the lent GPU machine; see
 * tools/gpu/run_gpu_tests.sh): {@code java -cp … dev.vlm4j.cuda.GpuTestMain [--check] [class-name-regex]}. Prints
 * each test's outcome and time, then the summary and failures; exits 1 when a test failed or none matched. With
 * {@code --check} it only finds the test classes, and exits 2 with a message when the regex matches none (the script
 * checks before it spends minutes on references: the regex must match whole class names, {@code dev.vlm4j.cuda.(A|B)}).
 */
public final class GpuTestMain {

    private GpuTestMain() {}

    public static void main(String[] args) {
        boolean check = args.length > 0 && args[0].equals("--check");
        int regexAt = check ? 1 : 0;
        String classes = args.length > regexAt ? args[regexAt] : ".*";
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
                .selectors(DiscoverySelectors.selectPackage("dev.vlm4j.cuda"))
                .filters(ClassNameFilter.includeClassNamePatterns(classes))
                .build();
        Launcher launcher = LauncherFactory.create();
        if (check) {
            // Classes, not tests: a @TestFactory class (KernelReferenceTest) has its tests only once it runs.
            TestPlan plan = launcher.discover(request);
            if (plan.countTestIdentifiers(id -> id.getSource().orElse(null) instanceof ClassSource) > 0) return;
            System.err.println("no test class matches the class-name regex '" + classes
                    + "': it must match whole names, e.g. 'dev.vlm4j.cuda.(KernelReferenceTest|CudaEngineTest)'");
            System.exit(2);
        }
        SummaryGeneratingListener summary = new SummaryGeneratingListener();
        launcher.execute(request, summary, new Progress());
        TestExecutionSummary result = summary.getSummary();
        PrintWriter out = new PrintWriter(System.out, true);
        result.printFailuresTo(out, 40);
        result.printTo(out);
        System.exit(result.getTotalFailureCount() > 0 || result.getTestsFoundCount() == 0 ? 1 : 0);
    }

    /** One line per finished or skipped test. */
    private static final class Progress implements TestExecutionListener {
        private final java.util.Map<String, Long> started = new java.util.concurrent.ConcurrentHashMap<>();

        @Override
        public void executionStarted(TestIdentifier test) {
            started.put(test.getUniqueId(), System.nanoTime());
        }

        @Override
        public void executionSkipped(TestIdentifier test, String reason) {
            System.out.println("SKIP  " + test.getDisplayName() + ": " + reason);
        }

        @Override
        public void executionFinished(TestIdentifier test, TestExecutionResult result) {
            if (!test.isTest()) return;
            long ms = (System.nanoTime() - started.getOrDefault(test.getUniqueId(), System.nanoTime())) / 1_000_000;
            String parent = test.getParentIdObject().map(id -> id.getLastSegment().getValue()).orElse("");
            String status = switch (result.getStatus()) {
                case SUCCESSFUL -> "OK";
                case ABORTED -> "SKIP";
                case FAILED -> "FAIL";
            };
            System.out.printf("%-5s %6d ms  %s %s%s%n", status,
                    ms, parent.substring(parent.lastIndexOf('.') + 1), test.getDisplayName(),
                    result.getThrowable().map(t -> "  <- " + t.getMessage()).orElse(""));
        }
    }
}
