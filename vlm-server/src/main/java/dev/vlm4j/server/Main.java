package dev.vlm4j.server;

public final class Main {
    public static void main(String[] args) {
        System.out.println("vlm");
    }
}
