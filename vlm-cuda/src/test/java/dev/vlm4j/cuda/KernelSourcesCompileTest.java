package dev.vlm4j.cuda;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every kernel source compiles with nvcc for Ampere (sm_80) and Hopper (sm_90a, as Kernels compiles for it), warnings as
 * errors, no spills, and no wgmma that ptxas serializes (it says so only as an "info" line, and a serialized kernel
 * still runs, several times slower: a change to control flow around the wgmmas can cause it):
 * CI has nvcc but no GPU, so a kernel that does not compile fails here rather than at first use on a GPU. Skips
 * when nvcc is absent.
 */
class KernelSourcesCompileTest {

    private static Path nvcc;

    @BeforeAll
    static void findNvcc() {
        nvcc = Nvcc.find();
    }

    static Stream<Arguments> modulesAndArchitectures() {
        return Kernels.MODULES.stream().flatMap(module -> Stream.of("sm_80", Kernels.targetArch("sm_90")).map(arch -> Arguments.of(module, arch)));
    }

    @ParameterizedTest(name = "{0}.cu for {1}")
    @MethodSource("modulesAndArchitectures")
    void compiles(String module, String arch, @TempDir Path dir) throws Exception {
        assumeTrue(nvcc != null, "nvcc is not installed");
        for (String header : Kernels.HEADERS) Files.writeString(dir.resolve(header), Kernels.source(header), UTF_8);
        Path source = dir.resolve(module + ".cu");
        Files.writeString(source, Kernels.source(module + ".cu"), UTF_8);
        Nvcc.Result r = Nvcc.run(List.of(nvcc.toString(), "-arch=" + arch, "-cubin", "-std=c++17", "--Werror", "all-warnings",
                "-Xptxas", "-warn-spills,-warn-lmem-usage", "-I", dir.toString(), "-o", dir.resolve(module + ".cubin").toString(),
                source.toString()));
        assertEquals(0, r.exitValue(), "nvcc " + arch + " " + module + ".cu:\n" + r.output());
        assertFalse(r.output().contains("instructions are serialized"), "nvcc " + arch + " " + module + ".cu:\n" + r.output());
    }

    /**
     * Every kernel launched as a programmatic dependent (Kernels, from sm_90) must wait for the kernel before it
     * before it touches memory: an entry point whose body does not start with wait_previous_kernel() would race it.
     * The one exception is paged attention, whose device function reads only what the kernel before cannot have
     * written (the host's inputs, earlier steps' cache rows) until it waits (attention.cu).
     */
    @ParameterizedTest(name = "{0}.cu")
    @MethodSource("modules")
    void everyKernelFirstWaitsForThePreviousOne(String module) {
        String source = Kernels.source(module + ".cu");
        Matcher entry = Pattern.compile("extern \"C\" __global__").matcher(source);
        int kernels = 0;
        while (entry.find()) {
            int body = source.indexOf('{', entry.end());
            String first = source.substring(body + 1).replaceAll("^[\\s\\\\]+", "");
            String signature = source.substring(entry.start(), body).replaceAll("\\s+", " ");
            boolean waitsInside = module.equals("attention") && first.startsWith("paged_attention<");
            assertTrue(first.startsWith("wait_previous_kernel();") || waitsInside,
                    module + ".cu: " + signature + " does not start with wait_previous_kernel()");
            kernels++;
        }
        assertTrue(kernels > 0, module + ".cu has no entry point");
    }

    static Stream<String> modules() {
        return Kernels.MODULES.stream();
    }

    /** A .cu file that Kernels.MODULES does not list would be neither compiled here nor loadable. */
    @Test
    void everySourceIsAModule() throws IOException, URISyntaxException {
        Path dir = Path.of(Objects.requireNonNull(Kernels.class.getResource(Kernels.RESOURCES)).toURI());
        try (Stream<Path> files = Files.list(dir)) {
            List<String> found = files.map(f -> f.getFileName().toString()).sorted().toList();
            List<String> listed = Stream.concat(Kernels.MODULES.stream().map(m -> m + ".cu"), Kernels.HEADERS.stream()).sorted().toList();
            assertEquals(listed, found);
        }
    }
}
