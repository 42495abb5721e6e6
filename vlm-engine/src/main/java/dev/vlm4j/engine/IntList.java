package dev.vlm4j.engine;

import java.util.Arrays;

/** A growable list of ints (token ids, block ids) without boxing. */
final class IntList {

    private int[] values;
    private int size;

    IntList(int capacity) {
        values = new int[Math.max(capacity, 4)];
    }

    IntList(int[] initial) {
        this(initial.length);
        addAll(initial);
    }

    int size() {
        return size;
    }

    int get(int index) {
        if (index < 0 || index >= size) throw new IndexOutOfBoundsException(index + " of " + size);
        return values[index];
    }

    int last() {
        return get(size - 1);
    }

    void set(int index, int value) {
        if (index < 0 || index >= size) throw new IndexOutOfBoundsException(index + " of " + size);
        values[index] = value;
    }

    int removeLast() {
        if (size == 0) throw new IllegalStateException("the list is empty");
        return values[--size];
    }

    void add(int value) {
        if (size == values.length) values = Arrays.copyOf(values, size * 2);
        values[size++] = value;
    }

    void addAll(int[] more) {
        if (size + more.length > values.length) values = Arrays.copyOf(values, Math.max(size * 2, size + more.length));
        System.arraycopy(more, 0, values, size, more.length);
        size += more.length;
    }

    void clear() {
        size = 0;
    }

    int[] toArray() {
        return Arrays.copyOf(values, size);
    }

    int[] slice(int from, int to) {
        if (from < 0 || to > size || from > to) throw new IndexOutOfBoundsException(from + ".." + to + " of " + size);
        return Arrays.copyOfRange(values, from, to);
    }
}
