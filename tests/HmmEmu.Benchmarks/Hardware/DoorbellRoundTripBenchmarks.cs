using System.Threading.Channels;
using BenchmarkDotNet.Attributes;

namespace HmmEmu.Benchmarks.Hardware;

/// <summary>
/// Goal (issue 4): in threaded mode, the round trip from the doorbell write to the completion interrupt, back on the
/// driver's thread, takes at most 2 µs (median) on the project machine. One operation: the driver (the benchmark
/// thread) writes a 64-byte copy descriptor with <c>InterruptOnCompletion</c>, rings the doorbell and sleeps until its
/// interrupt handler has run on the engine's worker thread and woken it; it then reads and consumes the completion
/// record. The baseline is a bare <see cref="Channel{T}"/> round trip between two threads that both block when idle:
/// the benchmark thread writes to one channel, an echo thread reads it and writes to a second, and the benchmark
/// thread reads the second (synchronous continuations allowed, the quickest hand-off a blocking channel reader gets).
/// </summary>
/// <remarks>
/// <see cref="WorkerIdleSpinRounds"/> is the engine's <c>DmaEngineOptions.IdleSpinRounds</c>: 0 puts the worker to sleep
/// as soon as the ring is empty, so each doorbell wakes a blocked thread; 10 (the default) and 200 keep it spinning that
/// many rounds of <c>Thread.SpinWait(16)</c> for the next doorbell. The driver spins up to 20 µs for its interrupt before it sleeps, as a blocking channel reader
/// spins inside Task.Wait. BenchmarkDotNet's Median is the median of the iteration means, each the mean of many round
/// trips. <see cref="SpinPingPong"/> is the machine's floor for any hand-off between two threads: each spins on one
/// field the other writes (no channel, no sleeping); its echo thread runs only while it is measured.
/// </remarks>
[MedianColumn]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class DoorbellRoundTripBenchmarks
{
    private DmaBenchMachine _m = null!;
    private Channel<int> _ping = null!;
    private Channel<int> _pong = null!;
    private Thread _echo = null!;
    private Thread? _spinEcho;
    private long _spinPing;
    private PaddedLong _spinPong;
    private volatile bool _stopSpinEcho;

    [Params(0, 10, 200)]
    public int WorkerIdleSpinRounds { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _m = new DmaBenchMachine(DmaBenchTranslator.Bus, 4096, WorkerIdleSpinRounds);
        var options = new UnboundedChannelOptions { SingleReader = true, SingleWriter = true, AllowSynchronousContinuations = true };
        _ping = Channel.CreateUnbounded<int>(options);
        _pong = Channel.CreateUnbounded<int>(options);
        _echo = new Thread(Echo) { IsBackground = true, Name = "channel echo" };
        _echo.Start();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ping.Writer.Complete();
        _echo.Join();
        _m.Dispose();
    }

    [GlobalSetup(Target = nameof(SpinPingPong))]
    public void SetupSpinPingPong()
    {
        Setup();
        _spinEcho = new Thread(SpinEcho) { IsBackground = true, Name = "spin echo" };
        _spinEcho.Start();
    }

    [GlobalCleanup(Target = nameof(SpinPingPong))]
    public void CleanupSpinPingPong()
    {
        _stopSpinEcho = true;
        _spinEcho?.Join();
        Cleanup();
    }

    /// <summary>The baseline: one message to the echo thread and its reply back, both sides blocking when idle.</summary>
    [Benchmark(Baseline = true)]
    public int ChannelRoundTrip()
    {
        _ping.Writer.TryWrite(1);
        int reply;
        while (!_pong.Reader.TryRead(out reply))
            WaitToRead(_pong.Reader);
        return reply;
    }

    /// <summary>Descriptor written, doorbell, copy on the worker, completion record, interrupt, driver woken, record consumed.</summary>
    [Benchmark]
    public void DoorbellToInterrupt()
    {
        _m.Submit(64);
        _m.WaitAndConsume(1);
    }

    /// <summary>The same round trip with a polling driver: it spins until its interrupt handler has run, never sleeps.</summary>
    [Benchmark]
    public void DoorbellToInterruptPolling()
    {
        _m.Submit(64);
        _m.WaitAndConsume(1, poll: true);
    }

    /// <summary>The floor: write a number to a field the spinning echo thread watches, spin until it writes it back.</summary>
    [Benchmark]
    public long SpinPingPong()
    {
        long v = Volatile.Read(ref _spinPing) + 1;
        Volatile.Write(ref _spinPing, v);
        while (Volatile.Read(ref _spinPong.Value) != v)
            Thread.SpinWait(1);
        return v;
    }

    private void SpinEcho()
    {
        long seen = 0;
        while (!_stopSpinEcho)
        {
            long p = Volatile.Read(ref _spinPing);
            if (p != seen)
            {
                seen = p;
                Volatile.Write(ref _spinPong.Value, p);
            }
            else
            {
                Thread.SpinWait(1);
            }
        }
    }

    private void Echo()
    {
        var reader = _ping.Reader;
        var writer = _pong.Writer;
        do
        {
            while (reader.TryRead(out int item))
                writer.TryWrite(item);
        }
        while (WaitToRead(reader));
    }

    // Blocks the calling thread until the channel has an item (true) or is completed (false).
    private static bool WaitToRead(ChannelReader<int> reader)
    {
        var wait = reader.WaitToReadAsync();
        return wait.IsCompletedSuccessfully ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
    }

    // The echo's field, on a cache line of its own, away from the benchmark's fields.
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 136)]
    private struct PaddedLong
    {
        [System.Runtime.InteropServices.FieldOffset(64)]
        public long Value;
    }
}
