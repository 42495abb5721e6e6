package dev.vlm4j.model;

/** Llama decoder hyper-parameters ({@code text_config} of a LLaVA config.json), HF defaults for absent fields. */
public record TextConfig(
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        int vocabSize,
        int maxPositionEmbeddings,
        double rmsNormEps,
        double ropeTheta,
        boolean tieWordEmbeddings,
        int bosTokenId,
        int eosTokenId,
        String hiddenAct) {}
