// Sampling on the device: vLLM 0.4's sampler as Sampler.java defines it on the host, for rows without penalties or
// min_tokens: temperature, top-k, top-p, min-p, then the first argmax (greedy) or a draw at a uniform number the host
// took from the request's generator; and what is reported with the token: its log-probability in the processed row,
// its rank, and the k most probable tokens with theirs.
//
// One block per sampled row. The row is only read, never written or sorted: each filter becomes a threshold (the
// k-th largest logit; the smallest key top-p keeps; min-p's probability bound) and every later pass re-applies them.
// Thresholds over an order come from radix select: 8-bit digits of an order-preserving 64-bit key, most significant
// first, each pass a block-wide histogram of counts or probability mass over the tokens that still match the digits
// chosen so far. Logit arithmetic (the temperature division, x - max) is f32 with the host's rounding;
// probabilities, sums and log-probabilities are double, as on the host. Sums run in another order than the host's
// sequential ones, so a top-p cutoff, min-p bound or draw within rounding (~1e-16 relative) of a boundary may fall
// the other way.
#include "common.cuh"

#define FULL_MASK 0xffffffffu
#define BINS 256
#define NONE (~0ull)

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

struct Scratch {
    double weight[BINS];  // radix select: mass per digit
    int count[BINS];      // radix select: tokens per digit
    double d[32];         // per-warp partials
    int i[32];
    unsigned long long prefix;
    double below;
    int found;
    int gathered;
};

// An unsigned key that orders like the float (-0 and +0 equal, as they compare).
__device__ __forceinline__ unsigned ukey(float x) {
    unsigned u = __float_as_uint(x == 0.f ? 0.f : x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ double warp_sum_d(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

// Block-wide sums and maxima; every thread gets the result, and sums add the warps' partials in one fixed order.
__device__ double block_sum_d(double v, Scratch& s) {
    v = warp_sum_d(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) s.d[threadIdx.x >> 5] = v;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < (int) (blockDim.x >> 5); w++) total += s.d[w];
    return total;
}

// An int reduction (sum, max) over the block: combine is associative and commutative.
template <typename Combine>
__device__ int block_reduce_i(int v, Combine combine, Scratch& s) {
    for (int offset = 16; offset > 0; offset >>= 1) v = combine(v, __shfl_xor_sync(FULL_MASK, v, offset));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) s.i[threadIdx.x >> 5] = v;
    __syncthreads();
    int total = s.i[0];
    for (int w = 1; w < (int) (blockDim.x >> 5); w++) total = combine(total, s.i[w]);
    return total;
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

// One row and the filters found so far: a token is kept while it passes every threshold set.
struct Row {
    const float* x;               // [n] raw logits
    int n;
    float temperature;
    float max;                    // of the scaled row (no filter removes it)
    unsigned top_k_min;           // top-k: ukey(scaled) >= top_k_min; 0 keeps all
    unsigned long long top_p_min; // top-p: p_key >= top_p_min; 0 keeps all
    unsigned id_mask;             // covers every token id
    bool min_p;
    double min_p_sum, min_p_bound;

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

// The draw: the first token, in id order, where the cumulative probability exceeds u; the last kept token when
// rounding leaves u beyond the end. Each warp sums a contiguous segment of ids; the warp whose segment holds u then
// walks from the start of its segment, 32 ids at a time.
__device__ int draw(const Row& r, double log_sum, double u, int last_kept, Scratch& s) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    int segment = ((r.n + warps - 1) / warps + 31) / 32 * 32;
    int begin = warp * segment, end = min(r.n, begin + segment);
    auto term = [&](int i) {
        float xs = r.scaled(i);
        return r.kept(i, xs) ? exp((double) __fsub_rn(xs, r.max) - log_sum) : 0.0;
    };
    double part = 0;
    for (int i = begin + lane; i < end; i += 32) part += term(i);
    part = warp_sum_d(part);
    __syncthreads();
    if (lane == 0) s.d[warp] = part;
    __syncthreads();
    if (threadIdx.x == 0) {
        double cumulative = 0;
        int w = 0;
        for (; w < warps && cumulative + s.d[w] <= u; w++) cumulative += s.d[w];
        s.found = w < warps ? w : -1;
        s.below = cumulative;
        s.i[0] = last_kept;
    }
    __syncthreads();
    int owner = s.found;
    if (warp == owner) {
        double cumulative = s.below;
        for (int base = owner * segment; base < r.n; base += 32) {
            int i = base + lane;
            double own = i < r.n ? term(i) : 0.0, inclusive = own;
            for (int offset = 1; offset < 32; offset <<= 1) {
                double v = __shfl_up_sync(FULL_MASK, inclusive, offset);
                if (lane >= offset) inclusive += v;
            }
            // Only a kept token can be drawn: the scan groups its additions differently per lane, so a removed token's
            // prefix (its neighbour's, re-added) can land a rounding step above u where its neighbour's did not.
            unsigned over = __ballot_sync(FULL_MASK, own > 0 && cumulative + inclusive > u);
            if (over) {
                if (lane == 0) s.i[0] = base + __ffs(over) - 1;
                break;
            }
            cumulative += __shfl_sync(FULL_MASK, inclusive, 31);
        }
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

// logits [rows, n]; params [grid]; out_d [grid, 1 + k]: the token's log-probability, then the top k's;
// out_i [grid, 2 + k]: the token, its rank, then the top k ids. k <= n.
extern "C" __global__ void __launch_bounds__(512) sample_rows(const float* __restrict__ logits, int n,
                                                               const SampleParams* __restrict__ params, int k,
                                                               double* __restrict__ out_d, int* __restrict__ out_i) {
    __shared__ Scratch s;
    const SampleParams p = params[blockIdx.x];
    Row r;
    r.x = logits + (long long) p.row * n;
    r.n = n;
    r.temperature = p.temperature;
    r.top_k_min = 0;
    r.top_p_min = 0;
    int low_bits = 32 - __clz(max(n - 1, 1));
    r.id_mask = (1u << low_bits) - 1;
    r.min_p = false;

    // The maximum and its first index (the greedy token: no filter removes it).
    float best = NEG_INF;
    int argmax = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x) keep_first_max(best, argmax, r.scaled(i), i);
    block_first_max(best, argmax, s);
    r.max = best;

    if (p.top_k > 0 && p.top_k < n) {  // the k-th largest logit, ties with it kept
        unsigned long long kth = select_key<true>(n, [&](int i, unsigned long long* key, double* w) {
            *key = (unsigned long long) ~ukey(r.scaled(i)) << 32;
            *w = 1;
        }, p.top_k - 1, 0, s);
        r.top_k_min = ~(unsigned) (kth >> 32);
    }
    if (p.top_p < 1.0) {  // removes, least probable first, while the removed mass stays <= 1 - top_p
        double sum = 0;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            float xs = r.scaled(i);
            if (r.kept_by_top_k(xs)) sum += r.e(xs);
        }
        sum = block_sum_d(sum, s);
        unsigned long long cut = select_key<false>(n, [&](int i, unsigned long long* key, double* w) {
            float xs = r.scaled(i);
            *key = r.p_key(xs, i);
            *w = r.kept_by_top_k(xs) ? r.e(xs) / sum : 0.0;
        }, 1.0 - p.top_p, low_bits, s);
        r.top_p_min = cut == NONE ? r.p_key(r.max, argmax) : cut;  // nothing exceeds: the most probable alone
    }
    if (p.min_p > 0) {
        double sum = 0;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            float xs = r.scaled(i);
            if (r.kept(i, xs)) sum += r.e(xs);
        }
        r.min_p_sum = block_sum_d(sum, s);
        r.min_p_bound = p.min_p * (1 / r.min_p_sum);
        r.min_p = true;
    }

    // log(sum exp(x - max)) of the processed row, and its last token that can be drawn (the draw's end): a kept token
    // of probability zero (a -inf logit among the top k) cannot.
    double sum = 0;
    int last_kept = -1;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float xs = r.scaled(i);
        if (r.kept(i, xs)) {
            double e = r.e(xs);
            sum += e;
            if (e > 0) last_kept = i;
        }
    }
    double log_sum = log(block_sum_d(sum, s));
    last_kept = block_reduce_i(last_kept, [](int a, int b) { return max(a, b); }, s);

    int token = p.greedy ? argmax : draw(r, log_sum, p.uniform, last_kept, s);
    double logprob = (double) __fsub_rn(r.scaled(token), r.max) - log_sum;
    int above = 0;
    if (!p.greedy) {  // the first argmax has rank 1
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            float xs = r.scaled(i);
            above += (double) __fsub_rn(xs, r.max) - log_sum > logprob && r.kept(i, xs);
        }
        above = block_reduce_i(above, [](int a, int b) { return a + b; }, s);
    }
    double* row_d = out_d + (long long) blockIdx.x * (1 + k);
    int* row_i = out_i + (long long) blockIdx.x * (2 + k);
    if (threadIdx.x == 0) {
        row_d[0] = logprob;
        row_i[0] = token;
        row_i[1] = 1 + above;
    }
    if (k > 0) top_logprobs(r, log_sum, k, low_bits, row_i + 2, row_d + 1, s);
}
