package dev.vlm4j.server.openai;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * Python's {@code str} methods for Jinjava, which otherwise calls Java's {@code String} methods: Hugging Face chat
 * templates run in Python's Jinja and write {@code message['role'].upper()}, {@code content.startswith('<')},
 * {@code text.split('\n')}. Resolves those calls on strings with Python's semantics; everything else falls
 * through to Jinjava's own resolver.
 */
final class PythonStringMethods extends ELResolver {

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(base instanceof String s) || method == null) return null;
        Object[] args = params == null ? new Object[0] : params;
        Object result = switch (method.toString()) {
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "strip" -> args.length == 0 || args[0] == null ? s.strip() : stripChars(s, args[0].toString(), true, true);
            case "lstrip" -> args.length == 0 || args[0] == null ? s.stripLeading() : stripChars(s, args[0].toString(), true, false);
            case "rstrip" -> args.length == 0 || args[0] == null ? s.stripTrailing() : stripChars(s, args[0].toString(), false, true);
            case "startswith" -> affix(args, s::startsWith);
            case "endswith" -> affix(args, s::endsWith);
            case "split" -> split(s, args);
            case "title" -> title(s);
            case "capitalize" -> s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
            default -> null;
        };
        if (result != null) context.setPropertyResolved(true);
        return result;
    }

    /** {@code startswith}/{@code endswith}: one affix, or any of a list of them. */
    private static Boolean affix(Object[] args, java.util.function.Predicate<String> test) {
        if (args.length != 1 || args[0] == null) return null;
        if (args[0] instanceof List<?> options) return options.stream().anyMatch(o -> test.test(String.valueOf(o)));
        return test.test(args[0].toString());
    }

    private static String stripChars(String s, String chars, boolean leading, boolean trailing) {
        int start = 0;
        int end = s.length();
        while (leading && start < end && chars.indexOf(s.charAt(start)) >= 0) start++;
        while (trailing && end > start && chars.indexOf(s.charAt(end - 1)) >= 0) end--;
        return s.substring(start, end);
    }

    /** Python's split: with no separator, runs of whitespace separate and empty pieces are dropped. */
    private static List<String> split(String s, Object[] args) {
        String sep = args.length > 0 && args[0] != null ? args[0].toString() : null;
        int maxSplit = args.length > 1 && args[1] instanceof Number n ? n.intValue() : -1;
        List<String> out = new ArrayList<>();
        if (sep == null) {
            String rest = s.stripLeading();
            while (!rest.isEmpty()) {
                if (maxSplit >= 0 && out.size() == maxSplit) {
                    out.add(rest);
                    return out;
                }
                int i = 0;
                while (i < rest.length() && !Character.isWhitespace(rest.charAt(i))) i++;
                out.add(rest.substring(0, i));
                rest = rest.substring(i).stripLeading();
            }
            return out;
        }
        if (sep.isEmpty()) throw new IllegalArgumentException("split: empty separator");
        int from = 0;
        while (true) {
            int at = s.indexOf(sep, from);
            if (at < 0 || (maxSplit >= 0 && out.size() == maxSplit)) break;
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    /** Python's title: the first letter of each run of letters upper case, the rest lower. */
    private static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean previousIsLetter = false;
        for (char c : s.toCharArray()) {
            out.append(previousIsLetter ? Character.toLowerCase(c) : Character.toUpperCase(c));
            previousIsLetter = Character.isLetter(c);
        }
        return out.toString();
    }

    // Property access is left to Jinjava's resolver.
    @Override public Object getValue(ELContext context, Object base, Object property) { return null; }
    @Override public Class<?> getType(ELContext context, Object base, Object property) { return null; }
    @Override public void setValue(ELContext context, Object base, Object property, Object value) {}
    @Override public boolean isReadOnly(ELContext context, Object base, Object property) { return true; }
    @Override public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) { return null; }
    @Override public Class<?> getCommonPropertyType(ELContext context, Object base) { return String.class; }
}
