// Whether a decode step's memory-bound work and a prefill's compute-bound products gain from sharing the H100 — the
// overlap a throughput run needs to reach 30 requests/s with a bf16 cache (docs/benchmarks.md, nineteenth session: one
// stream of kernels at their floors still takes ~17.3 s of the 16.7 allowed). LLaVA-1.5-7B's shapes:
//   decode   a layer of a decode step of S sequences: paged attention over P positions each (attention.cu's kernel on a
//            bf16 cache, one partition a (token, head), as attention_timing launches it), then the layer's four
//            products at S rows;
//   prefill  a layer of a prefill step of N prompt tokens: the four products at N rows.
// The products are q/k/v 4096 → 12288, o 4096 → 4096, gate/up 4096 → 22016 and down 11008 → 4096, cuBLASLt planned as
// Gemm.java plans them (lt_product.cuh). Each side has its own weights, cache and activations, so neither reads what
// the other brings into the L2, and the values are not checked (the kernels' own harnesses do that).
//
// Each side's start and end are %globaltimer stamps written by one-thread kernels on its stream (events cannot time
// streams of different green contexts). Arrangements, each timed in every round:
//   alone        each side by itself on the whole device;
//   one stream   decode then prefill, as the engine issues a step's kernels today;
//   two streams  decode and prefill on two streams of the whole device (the hardware interleaves their blocks), also
//                with the decode stream at the higher priority;
//   green D      disjoint SM partitions (green contexts): decode on D SMs, prefill on the rest with its products planned
//                for that many SMs; also each side alone in its partition.
// The green arrangements run again with the decode attention of decode_attention_tma/tma_attention.cuh (fed by TMA).
// Then, on the whole device and on each partition, the rate at which each attention alone reads its cache and the
// decode products read their weights, beside what TMA bulk copies into shared memory (64 or 128 KB in flight an SM)
// read: how many SMs a decode step needs for the bandwidth.
// Arguments: S P N decodeLayers prefillLayers rounds (150 660 3584 24 9 3: a throughput run's typical decode batch, its
// prompts of ~600 tokens six to a 4,096-token step, the two sides about equally long alone).
#include "attention.cu"
#include "flash_attention.cu"
#include "sm90.cuh"
#include "harness.cuh"
#include "lt_product.cuh"
#include "green.cuh"
#include "paged_batch.cuh"
#include "decode_attention_tma/tma_attention.cuh"
#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

// Reads `chunks` chunks of CHUNK bytes from src into shared memory with TMA bulk copies, IN_FLIGHT of them in flight a
// block (one block an SM): what an SM pulls from memory when its loads are not bounded by threads and registers.
constexpr int CHUNK = 16384;
template <int IN_FLIGHT> __global__ void __launch_bounds__(32) bulk_read(const char* src, long long chunks) {
    extern __shared__ __align__(128) unsigned char buffer[];
    __shared__ __align__(8) unsigned long long full[IN_FLIGHT];
    if (threadIdx.x != 0) return;
    unsigned base = (unsigned) __cvta_generic_to_shared(buffer), bars = (unsigned) __cvta_generic_to_shared(full);
    for (int s = 0; s < IN_FLIGHT; s++) barrier_init(bars + 8 * s, 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    long long issued = 0;
    for (long long c = blockIdx.x; c < chunks; c += gridDim.x, issued++) {
        int s = issued % IN_FLIGHT;
        if (issued >= IN_FLIGHT) barrier_wait(bars + 8 * s, (issued / IN_FLIGHT - 1) & 1);  // the stage's previous copy
        barrier_expect_bytes(bars + 8 * s, CHUNK);
        asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                     ::"r"(base + s * CHUNK), "l"(src + c * CHUNK), "r"(CHUNK), "r"(bars + 8 * s) : "memory");
    }
    for (long long j = issued > IN_FLIGHT ? issued - IN_FLIGHT : 0; j < issued; j++) barrier_wait(bars + 8 * (j % IN_FLIGHT), (j / IN_FLIGHT) & 1);
}

static const int SHAPES[4][2] = {{4096, 12288}, {4096, 4096}, {4096, 22016}, {11008, 4096}};  // k, m of q/k/v, o, gate/up, down

// One side's weights and activations at n rows, and its four products planned for each number of SMs it runs on (0:
// the whole device).
struct Layer {
    int n;
    bf16 *x, *out, *w[4];
    std::map<int, std::vector<LtProduct*>> products;

    Layer(int n, unsigned seed) : n(n) {
        x = filled((long long) n * 11008, seed, 1.f);
        out = filled((long long) n * 22016, seed + 1, 1.f);
        for (int i = 0; i < 4; i++) w[i] = filled((long long) SHAPES[i][0] * SHAPES[i][1], seed + 2 + i, 0.05f);
    }
    // Plans (and picks the fastest candidate, timed where the current context runs) for `sms` SMs.
    void plan(int sms) {
        for (int i = 0; i < 4; i++) {
            products[sms].push_back(new LtProduct(n, SHAPES[i][0], SHAPES[i][1], nullptr, false, sms));
            products[sms].back()->pickFastest(x, w[i], out);
        }
    }
    void run(cudaStream_t stream, int sms) {
        for (int i = 0; i < 4; i++) products.at(sms)[i]->run(x, w[i], out, stream);
    }
};

// A decode layer's attention: S sequences of P positions in a bf16 cache of its own, by attention.cu's kernel or by the
// prototype fed by TMA (decode_attention_tma/tma_attention.cuh).
struct DecodeAttention {
    int width, blocks;
    bf16 *k, *v, *out;
    PagedBatch* batch;
    TmaAttention* tma;

    DecodeAttention(int seqs, int context) {
        width = (context + PagedBatch::BLOCK - 1) / PagedBatch::BLOCK;
        blocks = seqs * width;
        long long elems = (long long) blocks * PagedBatch::BLOCK * PagedBatch::HEADS * PagedBatch::HEAD_DIM;
        k = filled(elems, 11, 2.f);
        v = filled(elems, 12, 2.f);
        out = filled((long long) seqs * PagedBatch::HEADS * PagedBatch::HEAD_DIM, 13, 1.f);
        std::vector<int> tables((size_t) blocks);
        for (int i = 0; i < blocks; i++) tables[i] = i;  // each sequence's blocks one after another
        batch = new PagedBatch(std::vector<int>(seqs, context - 1), tables, width, blocks);
        tma = new TmaAttention(k, v, *batch, 0.088f);
    }
    // On `sms` SMs (0: the whole device); by the prototype when `fed`.
    void run(const bf16* q, cudaStream_t stream, int sms, bool fed) {
        if (fed) tma->run(q, out, stream, sms ? sms : deviceSms);
        else batch->attend(q, k, v, out, 0.088f, stream);
    }
};

struct Timing {
    double decode, prefill, total;  // ms; a side not run: 0
};

// Issues `decodeLayers` decode layers at `d` and `prefillLayers` prefill layers at `p` (a layer of each in turn, so
// that both sides start together), each between its stamps, and waits for both.
static Timing run(Layer& decode, DecodeAttention& attention, int decodeLayers, Place d, Layer& prefill, int prefillLayers, Place p,
                  bool fed = false) {
    CU_CHECK(cuCtxSetCurrent(primary));
    CHECK(cudaMemset(stamps, 0, 4 * 8));
    CHECK(cudaDeviceSynchronize());
    for (int l = -1; l <= std::max(decodeLayers, prefillLayers); l++) {
        if (decodeLayers > 0 && (l == -1 || l == decodeLayers)) {
            CU_CHECK(cuCtxSetCurrent(d.context));
            stamp<<<1, 1, 0, d.stream>>>(stamps + (l == -1 ? 0 : 1));
        } else if (l >= 0 && l < decodeLayers) {
            CU_CHECK(cuCtxSetCurrent(d.context));
            attention.run(decode.x, d.stream, d.sms, fed);
            decode.run(d.stream, d.sms);
        }
        if (prefillLayers > 0 && (l == -1 || l == prefillLayers)) {
            CU_CHECK(cuCtxSetCurrent(p.context));
            stamp<<<1, 1, 0, p.stream>>>(stamps + (l == -1 ? 2 : 3));
        } else if (l >= 0 && l < prefillLayers) {
            CU_CHECK(cuCtxSetCurrent(p.context));
            prefill.run(p.stream, p.sms);
        }
    }
    CU_CHECK(cuCtxSetCurrent(d.context)); CHECK(cudaStreamSynchronize(d.stream));
    CU_CHECK(cuCtxSetCurrent(p.context)); CHECK(cudaStreamSynchronize(p.stream));
    CHECK(cudaGetLastError());
    unsigned long long t[4];
    CHECK(cudaMemcpy(t, stamps, sizeof t, cudaMemcpyDeviceToHost));
    // A side not run left its stamps at zero.
    unsigned long long start = decodeLayers == 0 ? t[2] : prefillLayers == 0 ? t[0] : std::min(t[0], t[2]);
    return Timing{(t[1] - t[0]) / 1e6, (t[3] - t[2]) / 1e6, (std::max(t[1], t[3]) - start) / 1e6};
}

// A line of results, with the wall-clock time (UTC) to match with CLOCKS' samples (run.sh).
static void print(const std::string& name, Timing t, double serial) {
    long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    printf("%02lld:%02lld:%02lld.%03lld  %-42s decode %7.2f ms  prefill %7.2f ms  total %7.2f ms  %5.3f of the two alone\n",
           ms / 3600000 % 24, ms / 60000 % 60, ms / 1000 % 60, ms % 1000, name.c_str(), t.decode, t.prefill, t.total, t.total / serial);
}

int main(int argc, char** argv) {
    int seqs = argc > 1 ? atoi(argv[1]) : 150, context = argc > 2 ? atoi(argv[2]) : 660, rows = argc > 3 ? atoi(argv[3]) : 3584;
    int decodeLayers = argc > 4 ? atoi(argv[4]) : 24, prefillLayers = argc > 5 ? atoi(argv[5]) : 9;
    int rounds = argc > 6 ? atoi(argv[6]) : 3;
    CHECK(cudaFree(0));
    greenInit();
    Layer decode(seqs, 100), prefill(rows, 200);
    DecodeAttention attention(seqs, context);
    decode.plan(0);
    prefill.plan(0);
    int low, high;
    CHECK(cudaDeviceGetStreamPriorityRange(&low, &high));
    cudaStream_t s1, s2, urgent;
    CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithPriority(&urgent, cudaStreamNonBlocking, high));
    Place one{primary, s1, 0}, other{primary, s2, 0}, first{primary, urgent, 0};

    // Green partitions: decode on D SMs, prefill on the rest.
    struct Split { Place decode, prefill; };
    std::vector<Split> splits;
    for (int want : {32, 48, 64, 80}) {
        Split split;
        greenSplit(want, &split.decode, &split.prefill);
        CU_CHECK(cuCtxSetCurrent(split.decode.context));
        decode.plan(split.decode.sms);
        CU_CHECK(cuCtxSetCurrent(split.prefill.context));
        prefill.plan(split.prefill.sms);
        printf("green split: decode %d SMs, prefill %d SMs\n", split.decode.sms, split.prefill.sms);
        splits.push_back(split);
    }
    CU_CHECK(cuCtxSetCurrent(primary));
    printf("decode: %d sequences x %d positions, %d layers; prefill: %d rows, %d layers\n", seqs, context, decodeLayers, rows,
           prefillLayers);

    for (int round = 1; round <= rounds; round++) {
        printf("round %d\n", round);
        Timing d = run(decode, attention, decodeLayers, one, prefill, 0, one);
        Timing p = run(decode, attention, 0, one, prefill, prefillLayers, one);
        double serial = d.total + p.total;
        print("decode alone", d, serial);
        print("prefill alone", p, serial);
        print("one stream", run(decode, attention, decodeLayers, one, prefill, prefillLayers, one), serial);
        print("two streams", run(decode, attention, decodeLayers, one, prefill, prefillLayers, other), serial);
        print("two streams, decode first", run(decode, attention, decodeLayers, first, prefill, prefillLayers, other), serial);
        for (Split& s : splits) {
            std::string name = "green, decode on " + std::to_string(s.decode.sms) + " SMs";
            print(name + ", alone", run(decode, attention, decodeLayers, s.decode, prefill, 0, s.prefill), serial);
            print("green, prefill on " + std::to_string(s.prefill.sms) + " SMs, alone",
                  run(decode, attention, 0, s.decode, prefill, prefillLayers, s.prefill), serial);
            print(name, run(decode, attention, decodeLayers, s.decode, prefill, prefillLayers, s.prefill), serial);
            print(name + ", TMA attention, alone", run(decode, attention, decodeLayers, s.decode, prefill, 0, s.prefill, true), serial);
            print(name + ", TMA attention", run(decode, attention, decodeLayers, s.decode, prefill, prefillLayers, s.prefill, true), serial);
        }
    }

    // Bandwidth by SMs: the attention alone (8 launches) and bulk copies of the same bytes (the K cache, 4 times), 64 and
    // 128 KB in flight an SM.
    double attentionBytes = attention.batch->bytes(), weightBytes = 0;
    for (auto& shape : SHAPES) weightBytes += 2.0 * shape[0] * shape[1];
    long long chunks = (long long) attention.blocks * PagedBatch::BLOCK * PagedBatch::HEADS * PagedBatch::HEAD_DIM * 2 / CHUNK;
    std::vector<Place> places{one};
    for (Split& s : splits) { places.push_back(s.decode); places.push_back(s.prefill); }
    for (int round = 1; round <= 2; round++) {
        for (Place& place : places) {
            int sms = place.sms ? place.sms : deviceSms;
            CU_CHECK(cuCtxSetCurrent(place.context));
            CHECK(cudaFuncSetAttribute(bulk_read<4>, cudaFuncAttributeMaxDynamicSharedMemorySize, 4 * CHUNK));
            CHECK(cudaFuncSetAttribute(bulk_read<8>, cudaFuncAttributeMaxDynamicSharedMemorySize, 8 * CHUNK));
            TmaAttention::allow();
            double attend = timeOn(place, 8, [&](cudaStream_t st) { attention.run(decode.x, st, place.sms, false); }) / 8;
            double fed = timeOn(place, 8, [&](cudaStream_t st) { attention.run(decode.x, st, place.sms, true); }) / 8;
            double products = decode.products.count(place.sms) ? timeOn(place, 8, [&](cudaStream_t st) { decode.run(st, place.sms); }) / 8 : 0;
            double bulk4 = timeOn(place, 4, [&](cudaStream_t st) {
                bulk_read<4><<<sms, 32, 4 * CHUNK, st>>>((const char*) attention.k, chunks);
            }) / 4;
            double bulk8 = timeOn(place, 4, [&](cudaStream_t st) {
                bulk_read<8><<<sms, 32, 8 * CHUNK, st>>>((const char*) attention.k, chunks);
            }) / 4;
            double bytes = chunks * (double) CHUNK;
            printf("%3d SMs: attention %7.1f us %5.0f GB/s, TMA-fed %7.1f us %5.0f GB/s; decode products %6.1f us %5.0f GB/s; "
                   "bulk copies, 64 KB in flight %5.0f GB/s, 128 KB %5.0f GB/s\n", sms, attend * 1e3, attentionBytes / attend / 1e6,
                   fed * 1e3, attentionBytes / fed / 1e6, products * 1e3, products ? weightBytes / products / 1e6 : 0.,
                   bytes / bulk4 / 1e6, bytes / bulk8 / 1e6);
        }
    }
    return 0;
}
