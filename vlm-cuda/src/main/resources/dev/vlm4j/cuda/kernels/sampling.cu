// Sampling on the device: vLLM 0.4's sampler as Sampler.java defines it on the host, for rows without penalties or
// min_tokens: temperature, top-k, top-p, min-p, then the first argmax (greedy) or a draw at a uniform number the host
// took from the request's generator; and what is reported with the token: its log-probability in the processed row,
// its rank, and the k most probable tokens with theirs.
//
// Three kernels, each over a grid of (sample, part): a row is cut into chunks of CHUNK tokens and each part, a block,
// takes a run of consecutive chunks: one chunk where a few rows would leave SMs idle, the whole row where many rows
// fill them (CudaSampler picks). sample_max finds each part's maximum. sample_filters sums exp(x - max) over each
// chunk; the last part of the row to finish (a count per row, which that part resets) then runs the row phase: the
// filters' thresholds and the log-sum of the processed row, into the row's RowState. sample_draw sums each chunk's
// probabilities; the last part of the row to finish draws, ranks the token and gathers the top k. Without filters a
// token's exp is thus evaluated once for the log-sum and once for the draw, spread over the row's parts.
//
// The row is only read, never written or sorted: each filter becomes a threshold (the k-th largest logit; the smallest
// key top-p keeps; min-p's probability bound) and every later pass re-applies them. Thresholds over an order come from
// radix select: 8-bit digits of an order-preserving 64-bit key, most significant first, each pass a block-wide
// histogram of counts or probability mass over the tokens that still match the digits chosen so far. They need the
// whole row at each step, so the row phase runs in one block; its sums take the chunks' while no filter has removed
// anything (with top-k, which leaves few tokens to exponentiate, the chunks skip theirs). The draw narrows in three
// ordered walks of one warp, each from the cumulative sum the one before ended at: over the chunks' sums to the chunk
// where the cumulative probability passes u, over its segments' to the segment, over the segment's probabilities
// (which the block computes again) to the token.
//
// Logit arithmetic (the temperature division, x - max) is f32 with the host's rounding; probabilities, sums and
// log-probabilities are double, as on the host. A chunk's sums have an order fixed by the chunk alone: SEGMENTS
// segments of SEGMENT consecutive tokens, each summed by a warp (each lane adds its tokens in id order, the lanes
// combine as a tree), then added in order; so a row's results do not depend on how many parts share it. Sums run in
// another order than the host's sequential ones, so a top-p cutoff, min-p bound or draw within rounding (~1e-16
// relative) of a boundary may fall the other way.
#include "common.cuh"

#define FULL_MASK 0xffffffffu
#define BINS 256
#define NONE (~0ull)

constexpr int SEGMENT = 128;               // consecutive tokens a warp sums: 4 a lane
constexpr int SEGMENTS = 16;               // segments of a chunk
constexpr int CHUNK = SEGMENT * SEGMENTS;  // 2048 (CudaSampler.java CHUNK)

// One sample's parameters, as CudaSampler.java writes them (40 bytes).
struct SampleParams {
    double top_p;       // < 1 enables top-p
    double min_p;       // > 0 enables min-p
    double uniform;     // in [0, 1): where the draw lands; unused when greedy
    int row;            // the logits row
    int top_k;          // in [1, n) enables top-k
    float temperature;  // the f32 divisor (1 when greedy)
    int greedy;
};

// A part's maximum scaled logit and the first token with it.
struct PartMax {
    float value;
    int index;
};

struct Scratch {
    double weight[BINS];  // radix select: mass per digit
    int count[BINS];      // radix select: tokens per digit
    double d[32];         // per-warp partials
    int i[32];
    unsigned long long prefix;
    double below;
    int found;
    int gathered;
    bool last;            // whether this block is the last part of its row to finish
};

// An unsigned key that orders like the float (-0 and +0 equal, as they compare).
__device__ __forceinline__ unsigned ukey(float x) {
    unsigned u = __float_as_uint(x == 0.f ? 0.f : x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// (v, i) becomes the better of itself and (v2, i2): the larger value, the smaller index among equal ones.
__device__ __forceinline__ void keep_first_max(float& v, int& i, float v2, int i2) {
    if (v2 > v || (v2 == v && i2 < i)) {
        v = v2;
        i = i2;
    }
}

// The first argmax of the block's (v, i) pairs, to every thread.
__device__ void block_first_max(float& v, int& i, Scratch& s) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        float v2 = __shfl_xor_sync(FULL_MASK, v, offset);
        int i2 = __shfl_xor_sync(FULL_MASK, i, offset);
        keep_first_max(v, i, v2, i2);
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) {
        s.d[threadIdx.x >> 5] = v;
        s.i[threadIdx.x >> 5] = i;
    }
    __syncthreads();
    v = (float) s.d[0];
    i = s.i[0];
    for (int w = 1; w < (int) (blockDim.x >> 5); w++) keep_first_max(v, i, (float) s.d[w], s.i[w]);
}

// The filters found so far: a token is kept while it passes every threshold set.
struct Thresholds {
    float max;                    // of the scaled row (no filter removes it)
    unsigned top_k_min;           // top-k: ukey(scaled) >= top_k_min; 0 keeps all
    unsigned long long top_p_min; // top-p: p_key >= top_p_min; 0 keeps all
    bool min_p;
    double min_p_sum, min_p_bound;
};

// What the row phase found, for sample_draw (CudaSampler.java STATE_BYTES).
struct RowState {
    Thresholds thresholds;
    double log_sum;  // log(sum exp(x - max)) of the processed row
    int argmax;      // the first argmax of the scaled row: the greedy token
    int last_kept;   // the last token that can be drawn (a kept -inf logit among the top k cannot)
};
static_assert(sizeof(RowState) == 56, "CudaSampler.java STATE_BYTES");

// Bits of the largest token id.
__device__ __forceinline__ int id_bits(int n) { return 32 - __clz(max(n - 1, 1)); }

// One row and its thresholds.
struct Row : Thresholds {
    const float* x;               // [n] raw logits
    int n;
    float temperature;
    unsigned id_mask;             // covers every token id

    // Sample p's row of logits [rows, n], no filter set yet.
    __device__ Row(const float* logits, int n, const SampleParams& p)
        : Thresholds{NEG_INF, 0, 0, false, 0, 0}, x(logits + (long long) p.row * n), n(n), temperature(p.temperature),
          id_mask((1u << id_bits(n)) - 1) {}

    __device__ float scaled(int i) const { return __fdiv_rn(x[i], temperature); }
    __device__ double e(float xs) const { return exp((double) __fsub_rn(xs, max)); }

    // Top-p's order: ascending probability, and among equal logits the higher id first (it counts as less probable).
    __device__ unsigned long long p_key(float xs, int i) const {
        return ((unsigned long long) ukey(xs) << 32) | (~(unsigned) i & id_mask);
    }

    __device__ bool kept_by_top_k(float xs) const { return ukey(xs) >= top_k_min; }

    // Whether token i (scaled logit xs) is kept.
    __device__ bool kept(int i, float xs) const {
        if (!kept_by_top_k(xs) || p_key(xs, i) < top_p_min) return false;
        return !min_p || !(e(xs) / min_p_sum < min_p_bound);
    }

    // The processed logit: scaled, or -inf where a filter removed it.
    __device__ float processed(int i) const {
        float xs = scaled(i);
        return kept(i, xs) ? xs : NEG_INF;
    }
};

// Adds a weight to the histogram bin `digit` (-1: nothing) for every lane of the warp at once: lanes with one digit
// add their weights up first, and one of them adds the sum, so that the common case (most of a row in one bin) does
// not serialise 32 atomics on one address.
template <bool COUNT>
__device__ __forceinline__ void add_to_bin(Scratch& s, int digit, double w) {
    unsigned peers = __match_any_sync(FULL_MASK, digit);
    int lane = threadIdx.x & 31;
    if (!COUNT) {
        double sum = 0;
        for (int j = 0; j < 32; j++) {
            double v = __shfl_sync(FULL_MASK, w, j);
            if ((peers >> j) & 1) sum += v;
        }
        w = sum;
    }
    if (digit >= 0 && lane == __ffs(peers) - 1) {
        atomicAdd(&s.count[digit], __popc(peers));
        if (!COUNT) atomicAdd(&s.weight[digit], w);
    }
}

// Radix select: the smallest key K such that the weight of the keys <= K exceeds `target`, over the keys
// key_weight(i, &key, &weight) gives for tokens i < n. COUNT: every weight is 1 (exact). Keys must be unique in
// their low `low_bits` bits where ties of the high word matter (they hold a token id); the bits between are zero.
// Returns NONE when the total weight does not exceed the target. Where rounding makes a later digit's bins add up
// to less than the target, the largest key of the chosen prefix is taken.
template <bool COUNT, typename KeyWeight>
__device__ unsigned long long select_key(int n, KeyWeight key_weight, double target, int low_bits, Scratch& s) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int passes = 4 + (low_bits + 7) / 8;
    unsigned long long prefix = 0, mask = 0;
    double below = 0;  // weight of the keys below the prefix
    for (int pass = 0; pass < passes; pass++) {
        int shift = pass < 4 ? 56 - 8 * pass : (low_bits + 7) / 8 * 8 - 8 * (pass - 3);
        for (int b = threadIdx.x; b < BINS; b += blockDim.x) {
            s.weight[b] = 0;
            s.count[b] = 0;
        }
        __syncthreads();
        for (int base = 0; base < n; base += blockDim.x) {  // the same trip count in every lane
            int i = base + threadIdx.x, digit = -1;
            unsigned long long key;
            double w = 0;
            if (i < n) {
                key_weight(i, &key, &w);
                if ((key & mask) == prefix) digit = (int) ((key >> shift) & 0xff);
            }
            add_to_bin<COUNT>(s, digit, w);
        }
        __syncthreads();
        if (warp == 0) {  // lane l owns bins 8l .. 8l+7
            auto bin = [&](int j) { return COUNT ? (double) s.count[8 * lane + j] : s.weight[8 * lane + j]; };
            double local = 0;
            int nonempty = -1;
            for (int j = 0; j < 8; j++) {
                local += bin(j);
                if (s.count[8 * lane + j] > 0) nonempty = j;
            }
            double inclusive = local;
            for (int offset = 1; offset < 32; offset <<= 1) {
                double v = __shfl_up_sync(FULL_MASK, inclusive, offset);
                if (lane >= offset) inclusive += v;
            }
            double exclusive = __shfl_up_sync(FULL_MASK, inclusive, 1);
            if (lane == 0) exclusive = 0;
            unsigned over = __ballot_sync(FULL_MASK, below + inclusive > target);
            unsigned filled = __ballot_sync(FULL_MASK, nonempty >= 0);
            // The lane holding the digit: the first to go over; else (rounding in a later pass, or a total within the
            // target) the last non-empty one.
            int owner = over ? __ffs(over) - 1 : filled ? 31 - __clz(filled) : 0;
            if (lane == owner) {
                double run = below + exclusive;
                int digit = -1;
                for (int j = 0; j < 8 && over && digit < 0; j++) {
                    if (run + bin(j) > target) digit = j;
                    else run += bin(j);
                }
                if (digit < 0) {  // nothing goes over: the last non-empty bin
                    digit = max(nonempty, 0);
                    run = below + exclusive;
                    for (int j = 0; j < digit; j++) run += bin(j);
                }
                s.found = filled != 0 && (over != 0 || pass > 0);
                s.prefix = prefix | ((unsigned long long) (8 * lane + digit) << shift);
                s.below = run;
            }
        }
        __syncthreads();
        if (!s.found) return NONE;
        prefix = s.prefix;
        below = s.below;
        mask |= 0xffull << shift;
    }
    return prefix;
}

// The chunks [first, last) of a row: those of part blockIdx.y.
struct Span {
    int first, last;
};

__device__ __forceinline__ int chunks_of(int n) { return (n + CHUNK - 1) / CHUNK; }

__device__ Span span_of(int n, int chunks_per_part) {
    int first = blockIdx.y * chunks_per_part;
    return {first, min(chunks_of(n), first + chunks_per_part)};
}

// The sums of term(i) over the span's chunks of a row of n tokens: each segment's into segments [chunks, SEGMENTS]
// and each chunk's (its segments', in order) into sums [chunks], in the order the header describes.
template <typename Term>
__device__ void chunk_sums(int n, Span span, Term term, double* sums, double* segments) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int g = span.first * SEGMENTS + warp; g < span.last * SEGMENTS; g += warps) {
        double sum = 0;
        for (int i = g * SEGMENT + lane; i < min(n, (g + 1) * SEGMENT); i += 32) sum += term(i);
        sum = warp_sum(sum);
        if (lane == 0) segments[g] = sum;
    }
    __syncthreads();
    for (int c = span.first + threadIdx.x; c < span.last; c += blockDim.x) {
        double sum = 0;
        for (int g = c * SEGMENTS; g < (c + 1) * SEGMENTS; g++) sum += segments[g];
        sums[c] = sum;
    }
}

// After a block has written its part of a row's sums: counts it as finished. True in the last part of the row to
// finish, which resets the count for the next kernel.
__device__ bool last_to_finish(int* finished, Scratch& s) {
    // Every thread's writes are visible device-wide before the block counts itself as finished.
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        s.last = atomicAdd(finished, 1) == (int) gridDim.y - 1;
        if (s.last) *finished = 0;
    }
    __syncthreads();
    return s.last;
}

// Where one warp's walk over count non-negative values in order ends: the first positive one that takes the
// cumulative sum from `base` past u, with the cumulative before it (over); else, where rounding leaves u beyond the
// end, the last positive one (index -1: none). The values are scanned 32 at a time, each scan a tree.
struct Crossing {
    int index;
    double below;
    bool over;
};

template <typename Value>
__device__ Crossing first_crossing(int count, Value value, double base, double u) {
    int lane = threadIdx.x & 31;
    Crossing found = {-1, base, false};
    double cumulative = base;
    for (int start = 0; start < count && !found.over; start += 32) {
        double own = start + lane < count ? value(start + lane) : 0.0, inclusive = own;
        for (int offset = 1; offset < 32; offset <<= 1) {
            double v = __shfl_up_sync(FULL_MASK, inclusive, offset);
            if (lane >= offset) inclusive += v;
        }
        double exclusive = __shfl_up_sync(FULL_MASK, inclusive, 1);
        if (lane == 0) exclusive = 0;
        // Only a positive value can be the one: the scan groups its additions differently per lane, so a zero's prefix
        // (its neighbour's, re-added) can land a rounding step above u where its neighbour's did not.
        unsigned over = __ballot_sync(FULL_MASK, own > 0 && cumulative + inclusive > u);
        unsigned positive = __ballot_sync(FULL_MASK, own > 0);
        if (positive) {
            int j = over ? __ffs(over) - 1 : 31 - __clz(positive);
            found = {start + j, cumulative + __shfl_sync(FULL_MASK, exclusive, j), over != 0};
        }
        cumulative += __shfl_sync(FULL_MASK, inclusive, 31);
    }
    return found;
}

// The draw: the first token, in id order, where the cumulative probability exceeds u; the last kept token when
// rounding leaves u beyond the end. Warp 0 walks the chunks' sums to the chunk, then its segments' to the segment (one
// whose sum is positive exists: the chunk's is); the block puts the segment's probabilities (probability(i)) in
// shared memory, and warp 0 walks them to the token.
template <typename Probability>
__device__ int draw(int n, Probability probability, double u, int last_kept, const double* sums, const double* segments,
                    Scratch& s) {
    double* segment_probabilities = s.weight;
    if (threadIdx.x < 32) {
        Crossing chunk = first_crossing(chunks_of(n), [&](int c) { return __ldcg(sums + c); }, 0.0, u);
        Crossing segment = {-1, 0, false};
        if (chunk.over) {
            segment = first_crossing(SEGMENTS, [&](int g) { return __ldcg(segments + chunk.index * SEGMENTS + g); },
                                     chunk.below, u);
        }
        if (threadIdx.x == 0) {
            s.found = chunk.over ? chunk.index * SEGMENTS + segment.index : -1;
            s.below = segment.below;
        }
    }
    __syncthreads();
    if (s.found < 0) return last_kept;
    int begin = s.found * SEGMENT, count = min(SEGMENT, n - begin);
    for (int j = threadIdx.x; j < count; j += blockDim.x) segment_probabilities[j] = probability(begin + j);
    __syncthreads();
    if (threadIdx.x < 32) {
        Crossing token = first_crossing(count, [&](int j) { return segment_probabilities[j]; }, s.below, u);
        if (threadIdx.x == 0) s.i[0] = begin + token.index;
    }
    __syncthreads();
    return s.i[0];
}

// The k most probable tokens of the processed row, best first (equal log-probabilities in ascending id order), into
// ids [k] and logprobs [k]; logprobs holds the selected keys until their ranks are known.
__device__ void top_logprobs(const Row& r, double log_sum, int k, int low_bits, int* ids, double* logprobs, Scratch& s) {
    auto key_of = [&](int i) {  // ascending = most probable first, then ascending id
        return ((unsigned long long) ~ukey(r.processed(i)) << 32) | (unsigned) i;
    };
    unsigned long long kth = select_key<true>(r.n, [&](int i, unsigned long long* key, double* w) {
        *key = key_of(i);
        *w = 1;
    }, k - 1, low_bits, s);
    if (threadIdx.x == 0) s.gathered = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < r.n; i += blockDim.x) {
        unsigned long long key = key_of(i);
        if (key <= kth) {
            int slot = atomicAdd(&s.gathered, 1);
            if (slot < k) logprobs[slot] = __longlong_as_double((long long) key);  // exactly k keys: keys are unique
        }
    }
    __syncthreads();
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
        unsigned long long key = (unsigned long long) __double_as_longlong(logprobs[j]);
        int rank = 0;
        for (int l = 0; l < k; l++) rank += (unsigned long long) __double_as_longlong(logprobs[l]) < key;
        ids[rank] = (int) (key & 0xffffffffu);
    }
    __syncthreads();
    for (int j = threadIdx.x; j < k; j += blockDim.x) logprobs[j] = (double) __fsub_rn(r.processed(ids[j]), r.max) - log_sum;
}

// logits [rows, n]; params [samples]; maxima [samples, parts]. Grid (samples, parts).
extern "C" __global__ void __launch_bounds__(512) sample_max(const float* __restrict__ logits, int n,
                                                              const SampleParams* __restrict__ params, int chunks_per_part,
                                                              PartMax* __restrict__ maxima) {
    wait_previous_kernel();
    __shared__ Scratch s;
    const Row r(logits, n, params[blockIdx.x]);
    Span span = span_of(n, chunks_per_part);
    float best = NEG_INF;
    int argmax = 0x7fffffff;
    for (int i = span.first * CHUNK + threadIdx.x; i < min(n, span.last * CHUNK); i += blockDim.x) {
        keep_first_max(best, argmax, r.scaled(i), i);
    }
    block_first_max(best, argmax, s);
    if (threadIdx.x == 0) maxima[blockIdx.x * gridDim.y + blockIdx.y] = {best, argmax};
}

// The row phase: the filters' thresholds on r (whose max is set) and what the draw needs. total and last_drawable: the
// sum of exp(x - max) over the whole row and its last token with a positive one, from the chunks (unless top-k).
__device__ RowState find_filters(Row& r, const SampleParams& p, int argmax, double total, int last_drawable, Scratch& s) {
    int n = r.n, low_bits = id_bits(n);
    bool filtered = false;  // whether a threshold is set: until then the chunks' sums are those of the kept tokens
    struct KeptSum {
        double sum;  // of exp(x - max) over the kept tokens
        int last;    // the last kept token where that is positive
    };
    auto kept_sum = [&]() -> KeptSum {
        if (!filtered) return {total, last_drawable};
        double sum = 0;
        int last = -1;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            float xs = r.scaled(i);
            if (r.kept(i, xs)) {
                double e = r.e(xs);
                sum += e;
                if (e > 0) last = i;
            }
        }
        sum = block_sum(sum, s.d);
        return {sum, block_reduce(last, s.i, [](int a, int b) { return max(a, b); })};
    };

    if (p.top_k > 0 && p.top_k < n) {  // the k-th largest logit, ties with it kept
        unsigned long long kth = select_key<true>(n, [&](int i, unsigned long long* key, double* w) {
            *key = (unsigned long long) ~ukey(r.scaled(i)) << 32;
            *w = 1;
        }, p.top_k - 1, 0, s);
        r.top_k_min = ~(unsigned) (kth >> 32);
        filtered = true;
    }
    if (p.top_p < 1.0) {  // removes, least probable first, while the removed mass stays <= 1 - top_p
        double sum = kept_sum().sum;
        unsigned long long cut = select_key<false>(n, [&](int i, unsigned long long* key, double* w) {
            float xs = r.scaled(i);
            *key = r.p_key(xs, i);
            *w = r.kept_by_top_k(xs) ? r.e(xs) / sum : 0.0;
        }, 1.0 - p.top_p, low_bits, s);
        r.top_p_min = cut == NONE ? r.p_key(r.max, argmax) : cut;  // nothing exceeds: the most probable alone
        filtered = true;
    }
    if (p.min_p > 0) {
        r.min_p_sum = kept_sum().sum;
        r.min_p_bound = p.min_p * (1 / r.min_p_sum);
        r.min_p = true;
        filtered = true;
    }
    KeptSum kept = kept_sum();
    return {r, log(kept.sum), argmax, kept.last};
}

// params [samples]; maxima [samples, parts] from sample_max; sums [samples, chunks] and segments [samples, chunks,
// SEGMENTS]: the chunks' sums of exp(x - max); last_drawable [samples, parts]; finished [samples]: zero between
// kernels; states [samples]. Grid (samples, parts).
extern "C" __global__ void __launch_bounds__(512) sample_filters(const float* __restrict__ logits, int n,
                                                                  const SampleParams* __restrict__ params,
                                                                  int chunks_per_part, const PartMax* __restrict__ maxima,
                                                                  double* sums, double* segments, int* last_drawable,
                                                                  int* finished, RowState* __restrict__ states) {
    wait_previous_kernel();
    __shared__ Scratch s;
    const SampleParams p = params[blockIdx.x];
    Row r(logits, n, p);
    int parts = gridDim.y, chunks = chunks_of(n);
    sums += (long long) blockIdx.x * chunks;
    segments += (long long) blockIdx.x * chunks * SEGMENTS;
    last_drawable += blockIdx.x * parts;

    // The row's maximum and its first index (the greedy token: no filter removes it).
    float best = NEG_INF;
    int argmax = 0x7fffffff;
    for (int j = threadIdx.x; j < parts; j += blockDim.x) {
        PartMax part = maxima[blockIdx.x * parts + j];
        keep_first_max(best, argmax, part.value, part.index);
    }
    block_first_max(best, argmax, s);
    r.max = best;

    bool top_k = p.top_k > 0 && p.top_k < n;
    int last = -1;
    if (!top_k) {
        chunk_sums(n, span_of(n, chunks_per_part), [&](int i) {
            double e = r.e(r.scaled(i));
            if (e > 0) last = i;  // each thread's tokens come in ascending order
            return e;
        }, sums, segments);
    }
    last = block_reduce(last, s.i, [](int a, int b) { return max(a, b); });
    if (threadIdx.x == 0) last_drawable[blockIdx.y] = last;
    if (!last_to_finish(finished + blockIdx.x, s)) return;

    double total = 0;
    if (!top_k) {
        for (int c = threadIdx.x; c < chunks; c += blockDim.x) total += __ldcg(sums + c);
        total = block_sum(total, s.d);
        for (int j = threadIdx.x; j < parts; j += blockDim.x) last = max(last, __ldcg(last_drawable + j));
        last = block_reduce(last, s.i, [](int a, int b) { return max(a, b); });
    }
    RowState state = find_filters(r, p, argmax, total, last, s);
    if (threadIdx.x == 0) states[blockIdx.x] = state;
}

// params [samples]; states [samples] from sample_filters; sums, segments and finished as sample_filters has them (the
// sums now of probabilities); out_d [samples, 1 + k]: the token's log-probability, then the top k's;
// out_i [samples, 2 + k]: the token, its rank, then the top k ids. k <= n. Grid (samples, parts).
extern "C" __global__ void __launch_bounds__(512) sample_draw(const float* __restrict__ logits, int n,
                                                               const SampleParams* __restrict__ params, int chunks_per_part,
                                                               const RowState* __restrict__ states, double* sums,
                                                               double* segments, int* finished, int k,
                                                               double* __restrict__ out_d, int* __restrict__ out_i) {
    wait_previous_kernel();
    __shared__ Scratch s;
    const SampleParams p = params[blockIdx.x];
    const RowState state = states[blockIdx.x];
    Row r(logits, n, p);
    static_cast<Thresholds&>(r) = state.thresholds;
    double log_sum = state.log_sum;
    sums += (long long) blockIdx.x * chunks_of(n);
    segments += (long long) blockIdx.x * chunks_of(n) * SEGMENTS;

    auto probability = [&](int i) {  // exp of the log-probability in the processed row
        float xs = r.scaled(i);
        return r.kept(i, xs) ? exp((double) __fsub_rn(xs, r.max) - log_sum) : 0.0;
    };
    if (!p.greedy) chunk_sums(n, span_of(n, chunks_per_part), probability, sums, segments);
    if (!last_to_finish(finished + blockIdx.x, s)) return;

    int token = p.greedy ? state.argmax : draw(n, probability, p.uniform, state.last_kept, sums, segments, s);
    double logprob = (double) __fsub_rn(r.scaled(token), r.max) - log_sum;
    int above = 0;
    if (!p.greedy) {  // the first argmax has rank 1
        // Only a token whose raw logit is on the more probable side of the drawn one's can rank above it: the division
        // by the temperature, x - max and - log_sum each keep the order or make equal.
        // One block passes over the whole row here: RANK_READS logits a thread are read before any is compared, so
        // that the pass costs n / (RANK_READS * blockDim.x) memory round trips, not n / blockDim.x.
        constexpr int RANK_READS = 8;
        float drawn = r.x[token];
        for (int first = threadIdx.x; first < n; first += RANK_READS * blockDim.x) {
            float x[RANK_READS];
#pragma unroll
            for (int j = 0; j < RANK_READS; j++) {
                int i = first + j * blockDim.x;
                x[j] = i < n ? r.x[i] : drawn;  // drawn: never above itself
            }
#pragma unroll
            for (int j = 0; j < RANK_READS; j++) {
                int i = first + j * blockDim.x;
                if (r.temperature > 0 ? x[j] > drawn : x[j] < drawn) {
                    float xs = r.scaled(i);
                    above += (double) __fsub_rn(xs, r.max) - log_sum > logprob && r.kept(i, xs);
                }
            }
        }
        above = block_reduce(above, s.i, [](int a, int b) { return a + b; });
    }
    double* row_d = out_d + (long long) blockIdx.x * (1 + k);
    int* row_i = out_i + (long long) blockIdx.x * (2 + k);
    if (threadIdx.x == 0) {
        row_d[0] = logprob;
        row_i[0] = token;
        row_i[1] = 1 + above;
    }
    if (k > 0) top_logprobs(r, log_sum, k, id_bits(n), row_i + 2, row_d + 1, s);
}
