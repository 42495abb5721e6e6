package dev.vlm4j;

/** Image data that comes with a prompt: pixels (an image or a pixel tensor) or precomputed vision features. */
public sealed interface MultiModalData permits ImagePixelData, ImageFeatureData {}
