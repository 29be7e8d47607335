// The latency run's load generator: offers StockTwits messages to a topic at a steady rate.
//
// Why Java: the generator runs on the 2 cores the classifier is measured on, so its own cost
// is measurement error. Offering 13,000-15,000 messages/s took kafka-python's producer
// 0.41-0.45 of a core; this, 0.09-0.11 (C1 compiler only, serial collector: bench/pipeline.py).
//
// Run from source by the JDK's launcher (bench/pipeline.py does), with the local broker's
// Kafka jars on the class path:
//   java -cp '<kafka libs>/*' bench/LoadGenerator.java BOOTSTRAP TEMPLATES FIRST_ID COUNT \
//       RATE WARM_UP_TOPIC WARM_UP_SECONDS TOPIC
// TEMPLATES holds one message per line, JSON starting with `{"id":0` (its id comes first).
// Record i is template i (cycling) with the id FIRST_ID + i, keyed by that id in decimal.
// First the records are offered to WARM_UP_TOPIC for WARM_UP_SECONDS, so the JVM has
// compiled the send path before the measured records go out; then COUNT records are offered
// to TOPIC at RATE records/s, each stamped (CreateTime) when it is sent. On success the last
// line of stdout is `measured: <records> records, <wall> s, <cpu> s CPU` (the process's CPU
// time during the measured phase, flush included); exit 1 when any send failed.

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class LoadGenerator {
  private static final long PACING_NS = 1_000_000L; // the offered load's finest step
  private static final byte[] ID_PREFIX = "{\"id\":".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] TEMPLATE_PREFIX = "{\"id\":0".getBytes(StandardCharsets.US_ASCII);

  public static void main(String[] args) throws Exception {
    if (args.length != 8) {
      System.err.println(
          "usage: LoadGenerator BOOTSTRAP TEMPLATES FIRST_ID COUNT RATE WARM_UP_TOPIC"
              + " WARM_UP_SECONDS TOPIC");
      System.exit(2);
    }
    String bootstrap = args[0];
    List<byte[]> tails = readTemplates(Path.of(args[1]));
    long firstId = Long.parseLong(args[2]);
    long count = Long.parseLong(args[3]);
    double rate = Double.parseDouble(args[4]);
    String warmUpTopic = args[5];
    double warmUpSeconds = Double.parseDouble(args[6]);
    String topic = args[7];
    if (!(rate > 0) || count < 1 || firstId < 1) {
      System.err.println("LoadGenerator: RATE, COUNT and FIRST_ID must be positive");
      System.exit(2);
    }

    Properties config = new Properties();
    config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    config.put(ProducerConfig.ACKS_CONFIG, "all");
    config.put(ProducerConfig.LINGER_MS_CONFIG, "5"); // as the project's own producers
    config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    config.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    config.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

    AtomicLong failed = new AtomicLong();
    AtomicReference<Exception> firstError = new AtomicReference<>();
    Callback callback =
        (metadata, error) -> {
          if (error != null) {
            failed.incrementAndGet();
            firstError.compareAndSet(null, error);
          }
        };
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    double wallS;
    double cpuS;
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(config)) {
      offer(producer, warmUpTopic, tails, firstId, (long) (rate * warmUpSeconds), rate, callback);
      producer.flush();
      long cpu0 = os.getProcessCpuTime();
      long wall0 = System.nanoTime();
      offer(producer, topic, tails, firstId, count, rate, callback);
      producer.flush();
      wallS = (System.nanoTime() - wall0) / 1e9;
      cpuS = (os.getProcessCpuTime() - cpu0) / 1e9;
    }
    if (failed.get() > 0) {
      System.err.println("LoadGenerator: " + failed.get() + " sends failed: " + firstError.get());
      System.exit(1);
    }
    System.out.printf(
        Locale.ROOT, "measured: %d records, %.3f s, %.3f s CPU%n", count, wallS, cpuS);
  }

  /** Sends `count` records at `rate` per second: each wake-up sends every record due. */
  private static void offer(
      KafkaProducer<byte[], byte[]> producer,
      String topic,
      List<byte[]> tails,
      long firstId,
      long count,
      double rate,
      Callback callback)
      throws InterruptedException {
    long start = System.nanoTime();
    long sent = 0;
    while (sent < count) {
      long due = Math.min(count, (long) ((System.nanoTime() - start) * rate / 1e9) + 1);
      for (; sent < due; sent++) {
        byte[] id = Long.toString(firstId + sent).getBytes(StandardCharsets.US_ASCII);
        byte[] tail = tails.get((int) (sent % tails.size()));
        byte[] value = new byte[ID_PREFIX.length + id.length + tail.length];
        System.arraycopy(ID_PREFIX, 0, value, 0, ID_PREFIX.length);
        System.arraycopy(id, 0, value, ID_PREFIX.length, id.length);
        System.arraycopy(tail, 0, value, ID_PREFIX.length + id.length, tail.length);
        long now = System.currentTimeMillis();
        producer.send(new ProducerRecord<>(topic, null, now, id, value), callback);
      }
      long sleep = Math.max(PACING_NS, start + (long) (sent * 1e9 / rate) - System.nanoTime());
      Thread.sleep(sleep / 1_000_000L, (int) (sleep % 1_000_000L));
    }
  }

  /** Each template's bytes after `{"id":0`. */
  private static List<byte[]> readTemplates(Path file) throws IOException {
    List<byte[]> tails = new ArrayList<>();
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      if (line.isEmpty()) {
        continue;
      }
      byte[] bytes = line.getBytes(StandardCharsets.UTF_8);
      if (bytes.length <= TEMPLATE_PREFIX.length
          || !Arrays.equals(bytes, 0, TEMPLATE_PREFIX.length, TEMPLATE_PREFIX, 0,
              TEMPLATE_PREFIX.length)
          || (bytes[TEMPLATE_PREFIX.length] != ',' && bytes[TEMPLATE_PREFIX.length] != '}')) {
        throw new IllegalArgumentException(
            "template " + (tails.size() + 1) + " does not start with {\"id\":0 in " + file);
      }
      tails.add(Arrays.copyOfRange(bytes, TEMPLATE_PREFIX.length, bytes.length));
    }
    if (tails.isEmpty()) {
      throw new IllegalArgumentException("no templates in " + file);
    }
    return tails;
  }
}
