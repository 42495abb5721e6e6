package dev.vlm4j.cuda;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A shared library of the CUDA stack, found by soname. Where to look, in order: the file an environment variable
 * names ({@code VLM4J_LIBCUDA}, {@code VLM4J_LIBNVRTC}, {@code VLM4J_LIBCUBLASLT}); for the toolkit libraries,
 * {@code $CUDA_HOME} (or {@code $CUDA_PATH}); the dynamic loader's own path ({@code LD_LIBRARY_PATH},
 * {@code ld.so.cache}: where the driver's libcuda lives); then the driver's usual folders, or for the toolkit
 * {@code /usr/local/cuda*} and the NVIDIA wheels of the Python environments in sight
 * ({@code site-packages/nvidia/cu13/lib}, as PyTorch installs them).
 */
final class NativeLibrary {

    /** What to look for: a description for messages, the overriding variable, sonames newest first, wheel folders. */
    record Spec(String what, String envVar, List<String> sonames, List<String> wheelDirs, boolean toolkit) {}

    static final Spec DRIVER = new Spec("the CUDA driver (libcuda)", "VLM4J_LIBCUDA",
            List.of("libcuda.so.1", "libcuda.so"), List.of(), false);
    static final Spec NVRTC = new Spec("NVRTC (libnvrtc)", "VLM4J_LIBNVRTC",
            List.of("libnvrtc.so.13", "libnvrtc.so.12"), List.of("nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib"), true);
    static final Spec CUBLASLT = new Spec("cuBLASLt (libcublasLt)", "VLM4J_LIBCUBLASLT",
            List.of("libcublasLt.so.13", "libcublasLt.so.12"), List.of("nvidia/cu13/lib", "nvidia/cublas/lib"), true);

    private static final Linker LINKER = Linker.nativeLinker();

    final Path file;           // the file opened, or the soname the loader resolved
    private final SymbolLookup lookup;
    private final String what;

    private NativeLibrary(String what, Path file, SymbolLookup lookup) {
        this.what = what;
        this.file = file;
        this.lookup = lookup;
    }

    /** Opens the library {@code spec} describes, or throws {@link IllegalStateException} saying where it looked. */
    static NativeLibrary open(Spec spec) {
        return open(spec, System.getenv());
    }

    static NativeLibrary open(Spec spec, Map<String, String> env) {
        String override = env.get(spec.envVar());
        if (override != null && !override.isBlank()) {
            Path file = Path.of(override);
            if (!Files.isRegularFile(file)) {
                throw new IllegalStateException(spec.envVar() + "=" + override + " is not a file: point it at " + spec.what());
            }
            return load(spec, file);
        }
        List<Path> tried = new ArrayList<>();
        for (Path dir : searchDirs(spec, env, true)) {
            for (String soname : spec.sonames()) {
                Path candidate = dir.resolve(soname);
                tried.add(candidate);
                if (Files.isRegularFile(candidate)) return load(spec, candidate);
            }
        }
        for (String soname : spec.sonames()) {
            try {
                return new NativeLibrary(spec.what(), Path.of(soname), SymbolLookup.libraryLookup(soname, Arena.global()));
            } catch (IllegalArgumentException notOnLoaderPath) {
                tried.add(Path.of("(loader path) " + soname));
            }
        }
        for (Path dir : searchDirs(spec, env, false)) {
            for (String soname : spec.sonames()) {
                Path candidate = dir.resolve(soname);
                tried.add(candidate);
                if (Files.isRegularFile(candidate)) return load(spec, candidate);
            }
        }
        throw new IllegalStateException(spec.what() + " was not found; looked for " + spec.sonames() + " in " + tried
                + ". Install the CUDA " + (spec.toolkit() ? "toolkit libraries (or pip's nvidia wheels)" : "driver")
                + ", or set " + spec.envVar() + " to the library file.");
    }

    private static NativeLibrary load(Spec spec, Path file) {
        try {
            return new NativeLibrary(spec.what(), file, SymbolLookup.libraryLookup(file, Arena.global()));
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException(spec.what() + " at " + file + " could not be loaded: " + e.getMessage(), e);
        }
    }

    /**
     * Folders to search, before the loader's path ({@code first}: {@code $CUDA_HOME} for the toolkit) or after it
     * (the driver's usual folders; the toolkit's install folders and the Python environments).
     */
    private static List<Path> searchDirs(Spec spec, Map<String, String> env, boolean first) {
        Set<Path> dirs = new LinkedHashSet<>();
        if (!spec.toolkit()) {
            return first ? List.of() : List.of(Path.of("/usr/lib/x86_64-linux-gnu"), Path.of("/usr/lib64"),
                    Path.of("/usr/local/nvidia/lib64"), Path.of("/usr/lib/wsl/lib"));
        }
        if (first) {
            for (String var : List.of("CUDA_HOME", "CUDA_PATH")) {
                String home = env.get(var);
                if (home != null && !home.isBlank()) toolkitDirs(Path.of(home), dirs);
            }
            return List.copyOf(dirs);
        }
        toolkitDirs(Path.of("/usr/local/cuda"), dirs);
        for (Path install : glob(Path.of("/usr/local"), "cuda-*")) toolkitDirs(install, dirs);
        for (Path sitePackages : sitePackages(env)) {
            for (String wheelDir : spec.wheelDirs()) dirs.add(sitePackages.resolve(wheelDir));
        }
        return List.copyOf(dirs);
    }

    private static void toolkitDirs(Path home, Set<Path> dirs) {
        dirs.add(home.resolve("lib64"));
        dirs.add(home.resolve("lib"));
        dirs.add(home.resolve("targets/x86_64-linux/lib"));
        dirs.add(home.resolve("targets/sbsa-linux/lib"));
    }

    /**
     * site-packages (and dist-packages) folders of the Python environments in sight: an active virtualenv or conda
     * environment, a virtualenv whose {@code bin} is on the PATH, PYTHONPATH, the user's and the system's.
     */
    private static List<Path> sitePackages(Map<String, String> env) {
        Set<Path> prefixes = new LinkedHashSet<>();
        for (String var : List.of("VIRTUAL_ENV", "CONDA_PREFIX")) {
            String prefix = env.get(var);
            if (prefix != null && !prefix.isBlank()) prefixes.add(Path.of(prefix));
        }
        String path = env.getOrDefault("PATH", "");
        for (String entry : path.split(":")) {
            Path bin = entry.isEmpty() ? null : Path.of(entry);
            if (bin != null && bin.getFileName() != null && bin.getFileName().toString().equals("bin") && bin.getParent() != null
                    && Files.isRegularFile(bin.getParent().resolve("pyvenv.cfg"))) {
                prefixes.add(bin.getParent());
            }
        }
        String home = env.get("HOME");
        if (home != null) prefixes.add(Path.of(home, ".local"));
        prefixes.add(Path.of("/usr/local"));
        prefixes.add(Path.of("/usr"));
        Set<Path> result = new LinkedHashSet<>();
        for (String entry : env.getOrDefault("PYTHONPATH", "").split(":")) {
            if (!entry.isEmpty()) result.add(Path.of(entry));
        }
        for (Path prefix : prefixes) {
            for (Path lib : glob(prefix.resolve("lib"), "python3*")) {
                result.add(lib.resolve("site-packages"));
                result.add(lib.resolve("dist-packages"));
            }
        }
        return List.copyOf(result);
    }

    private static List<Path> glob(Path dir, String pattern) {
        if (!Files.isDirectory(dir)) return List.of();
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir, pattern)) {
            stream.forEach(found::add);
        } catch (IOException | SecurityException e) {
            return List.of();
        }
        found.sort(null);
        return found.reversed(); // newest version first
    }

    /** A downcall handle to {@code symbol}; a missing symbol is a clear error naming the library. */
    MethodHandle function(String symbol, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(lookup.find(symbol).orElseThrow(() -> new IllegalStateException(
                what + " at " + file + " has no function " + symbol + ": the library is too old for vlm4j")), descriptor);
    }

    @Override
    public String toString() {
        return what + " " + file;
    }
}
