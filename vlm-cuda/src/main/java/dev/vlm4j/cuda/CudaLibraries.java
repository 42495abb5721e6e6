package dev.vlm4j.cuda;

/**
 * The CUDA libraries of this process, loaded once: the driver initialised with at least one device, NVRTC and
 * cuBLASLt opened. When any is missing, {@link #load()} throws and {@link #unavailableReason()} says why.
 */
final class CudaLibraries {

    final Driver driver;
    final Nvrtc nvrtc;
    final CublasLt cublasLt;
    final String description;

    private CudaLibraries(Driver driver, Nvrtc nvrtc, CublasLt cublasLt, String description) {
        this.driver = driver;
        this.nvrtc = nvrtc;
        this.cublasLt = cublasLt;
        this.description = description;
    }

    private static final Object LOCK = new Object();
    private static CudaLibraries loaded;
    private static RuntimeException failure;

    /** The loaded libraries; throws {@link IllegalStateException} with the reason when CUDA cannot run here. */
    static CudaLibraries load() {
        synchronized (LOCK) {
            if (loaded == null && failure == null) {
                try {
                    loaded = open();
                } catch (RuntimeException | LinkageError e) {
                    failure = new IllegalStateException(e.getMessage(), e);
                }
            }
            if (failure != null) throw failure;
            return loaded;
        }
    }

    /** Null when CUDA can run here, else why not. Never throws. */
    static String unavailableReason() {
        try {
            load();
            return null;
        } catch (RuntimeException e) {
            return e.getMessage();
        }
    }

    private static CudaLibraries open() {
        NativeLibrary driverLibrary = NativeLibrary.open(NativeLibrary.DRIVER);
        Driver driver = new Driver(driverLibrary);
        try {
            driver.init();
        } catch (CudaException e) {
            throw new IllegalStateException("the CUDA driver " + driverLibrary.file + " found no usable GPU: " + e.getMessage(), e);
        }
        if (driver.deviceCount() == 0) throw new IllegalStateException("the CUDA driver found no GPU");
        NativeLibrary nvrtcLibrary = NativeLibrary.open(NativeLibrary.NVRTC);
        NativeLibrary cublasLtLibrary = NativeLibrary.open(NativeLibrary.CUBLASLT);
        Nvrtc nvrtc = new Nvrtc(nvrtcLibrary);
        CublasLt cublasLt = new CublasLt(cublasLtLibrary);
        int version = driver.driverVersion();
        String description = "CUDA driver " + version / 1000 + "." + version % 1000 / 10 + " (" + driverLibrary.file + "), NVRTC "
                + nvrtc.version + " (" + nvrtcLibrary.file + "), cuBLASLt " + cublasLt.version + " (" + cublasLtLibrary.file + ")";
        return new CudaLibraries(driver, nvrtc, cublasLt, description);
    }
}
