package dev.vlm4j.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** NVRTC through FFM: compiles CUDA C++ source to a CUBIN for one GPU architecture. */
final class Nvrtc {

    private final MethodHandle nvrtcVersion, nvrtcGetErrorString, nvrtcCreateProgram, nvrtcDestroyProgram, nvrtcCompileProgram,
            nvrtcGetProgramLogSize, nvrtcGetProgramLog, nvrtcGetCUBINSize, nvrtcGetCUBIN;

    /** major.minor, e.g. "13.0": part of every kernel cache key. */
    final String version;

    Nvrtc(NativeLibrary lib) {
        nvrtcVersion = lib.function("nvrtcVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetErrorString = lib.function("nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        nvrtcCreateProgram = lib.function("nvrtcCreateProgram",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        nvrtcDestroyProgram = lib.function("nvrtcDestroyProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        nvrtcCompileProgram = lib.function("nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        nvrtcGetProgramLogSize = lib.function("nvrtcGetProgramLogSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetProgramLog = lib.function("nvrtcGetProgramLog", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetCUBINSize = lib.function("nvrtcGetCUBINSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetCUBIN = lib.function("nvrtcGetCUBIN", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment major = arena.allocate(JAVA_INT), minor = arena.allocate(JAVA_INT);
            check(NativeCall.status(() -> (int) nvrtcVersion.invokeExact(major, minor)), "nvrtcVersion");
            version = major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
        }
    }

    /**
     * Compiles {@code source} (named {@code name} in messages) with {@code headers} (include name → text) available
     * to {@code #include "…"}; returns the CUBIN. A compile error throws {@link CudaException} with NVRTC's log.
     */
    byte[] compile(String name, String source, Map<String, String> headers, List<String> options) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment programOut = arena.allocate(ADDRESS);
            MemorySegment headerTexts = strings(arena, List.copyOf(headers.values()));
            MemorySegment headerNames = strings(arena, List.copyOf(headers.keySet()));
            MemorySegment src = arena.allocateFrom(source), cName = arena.allocateFrom(name);
            int count = headers.size();
            check(NativeCall.status(() -> (int) nvrtcCreateProgram.invokeExact(programOut, src, cName, count, headerTexts, headerNames)),
                    "nvrtcCreateProgram(" + name + ")");
            MemorySegment program = programOut.get(ADDRESS, 0);
            try {
                MemorySegment opts = strings(arena, options);
                int status = NativeCall.status(() -> (int) nvrtcCompileProgram.invokeExact(program, options.size(), opts));
                if (status != 0) {
                    throw new CudaException("nvrtcCompileProgram(" + name + ", " + options + ")", errorName(status), log(arena, program));
                }
                MemorySegment size = arena.allocate(JAVA_LONG);
                check(NativeCall.status(() -> (int) nvrtcGetCUBINSize.invokeExact(program, size)), "nvrtcGetCUBINSize");
                MemorySegment cubin = arena.allocate(size.get(JAVA_LONG, 0));
                check(NativeCall.status(() -> (int) nvrtcGetCUBIN.invokeExact(program, cubin)), "nvrtcGetCUBIN");
                return cubin.toArray(JAVA_BYTE);
            } finally {
                check(NativeCall.status(() -> (int) nvrtcDestroyProgram.invokeExact(programOut)), "nvrtcDestroyProgram");
            }
        }
    }

    private String log(Arena arena, MemorySegment program) {
        MemorySegment size = arena.allocate(JAVA_LONG);
        check(NativeCall.status(() -> (int) nvrtcGetProgramLogSize.invokeExact(program, size)), "nvrtcGetProgramLogSize");
        MemorySegment text = arena.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
        check(NativeCall.status(() -> (int) nvrtcGetProgramLog.invokeExact(program, text)), "nvrtcGetProgramLog");
        return text.getString(0);
    }

    private static MemorySegment strings(Arena arena, List<String> values) {
        MemorySegment array = arena.allocate(ADDRESS, Math.max(1, values.size()));
        for (int i = 0; i < values.size(); i++) array.setAtIndex(ADDRESS, i, arena.allocateFrom(values.get(i)));
        return array;
    }

    private void check(int status, String call) {
        if (status != 0) throw new CudaException(call, errorName(status), "");
    }

    private String errorName(int status) {
        try {
            MemorySegment text = (MemorySegment) nvrtcGetErrorString.invokeExact(status);
            return text.equals(MemorySegment.NULL) ? "NVRTC error " + status : text.reinterpret(Integer.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            return "NVRTC error " + status;
        }
    }
}
