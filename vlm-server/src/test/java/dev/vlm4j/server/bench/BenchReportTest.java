package dev.vlm4j.server.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchReportTest {

    @Test
    void percentilesInterpolateAsNumpysDefault() {
        double[] sorted = {1, 2, 3, 4};
        // numpy.percentile([1, 2, 3, 4], [0, 50, 90, 99, 100]) = [1, 2.5, 3.7, 3.97, 4]
        assertEquals(1, BenchReport.percentile(sorted, 0), 1e-12);
        assertEquals(2.5, BenchReport.percentile(sorted, 50), 1e-12);
        assertEquals(3.7, BenchReport.percentile(sorted, 90), 1e-12);
        assertEquals(3.97, BenchReport.percentile(sorted, 99), 1e-12);
        assertEquals(4, BenchReport.percentile(sorted, 100), 1e-12);
    }

    @Test
    void secondsGoToJsonInSecondsAndToTheTableInMilliseconds(@TempDir Path tmp) throws Exception {
        BenchReport r = new BenchReport().put("device", "cpu").seconds("ttft", "time to first token", new double[] {0.004, 0.001, 0.003, 0.002});
        ByteArrayOutputStream table = new ByteArrayOutputStream();
        r.print(new PrintStream(table, true));
        String[] lines = table.toString().split("\\R");
        assertEquals("metric" + " ".repeat(40) + "value", lines[0]);
        assertEquals("time to first token (mean / p50 / p90 / p99)  2.50 / 2.50 / 3.70 / 3.97 ms", lines[1]);
        r.writeJson(tmp.resolve("r.json"));
        JsonNode json = new ObjectMapper().readTree(tmp.resolve("r.json").toFile());
        assertEquals("cpu", json.get("device").asText());
        assertEquals(0.0025, json.get("ttft_mean").asDouble(), 1e-12);
        assertEquals(0.0037, json.get("ttft_p90").asDouble(), 1e-12);
    }
}
