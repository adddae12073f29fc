using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using HmmEmu.Kernel;
using HmmEmu.Rnic;
using HmmEmu.Rnic.Driver;

namespace HmmEmu.Benchmarks.Rnic;

/// <summary>
/// Small-message rate: <see cref="Messages"/> RDMA WRITEs of 64 bytes from A's pinned MR to B's, posted back to back
/// on an SQ of <see cref="SqDepth"/> entries with every 64th one signaled (and the last), polling A's CQ whenever the
/// SQ is full and at the end until the last completion. Reported per message (<c>OperationsPerInvoke</c>), so 1/Mean
/// is the message rate. No goal is set; the ratio says how many bare thread hand-offs one WRITE costs.
/// </summary>
/// <remarks>
/// The baseline is <see cref="ChannelHandOffs"/>: the same number of items written to an unbounded
/// <see cref="Channel{T}"/> that a consumer thread (blocking when idle) drains, and the wait until it has taken the
/// last. A 64-byte <c>Span.CopyTo</c> (a few ns) would say nothing about the simulator: moving 64 bytes is not what a
/// small WRITE costs here. What every WRITE must pay is the hand-offs between the threads that play the hardware
/// (doorbell to the requester's worker, the link's delivery worker, B's responder; the ACK back the same way to A's
/// completer), so a bare hand-off between two real threads is the floor it is measured against.
/// </remarks>
[MedianColumn]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class RnicMessageRateBenchmarks
{
    private const int Messages = 1000;
    private const int Bytes = 64;
    private const int SignalEvery = 64;
    private const int SqDepth = 256;

    private RnicBenchMachine _m = null!;
    private IbvSendWr _unsignaled;
    private IbvSendWr _signaled;
    private ulong _dst;
    private long _posted;
    private long _sqFull;
    private Channel<int> _channel = null!;
    private Thread _consumer = null!;
    private int _taken;

    [GlobalSetup(Target = nameof(ChannelHandOffs))]
    public void SetupChannel()
    {
        _channel = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        _consumer = new Thread(Consume) { IsBackground = true, Name = "channel consumer" };
        _consumer.Start();
    }

    [GlobalCleanup(Target = nameof(ChannelHandOffs))]
    public void CleanupChannel()
    {
        _channel.Writer.Complete();
        _consumer.Join();
    }

    [GlobalSetup(Target = nameof(RdmaWrite64B))]
    public void SetupWrite()
    {
        _m = new RnicBenchMachine(ramBytes: 256UL << 20, queueDepth: SqDepth);
        ulong src = RnicBenchMachine.Map(_m.A, 4096);
        _dst = RnicBenchMachine.Map(_m.B, 4096);
        RnicBenchMachine.FillPattern(_m.A, src, Bytes, 5);
        var mrA = _m.RegMr(_m.A, src, 4096, onDemand: false);
        var mrB = _m.RegMr(_m.B, _dst, 4096, onDemand: false);
        _unsignaled = new IbvSendWr(0, RnicWrOpcode.RdmaWrite, RnicSendFlags.None, [new RnicSge(src, Bytes, mrA.Lkey)], _dst, mrB.Rkey);
        _signaled = _unsignaled with { Flags = RnicSendFlags.Signaled };
        RdmaWrite64B();
        RnicBenchMachine.CheckPattern(_m.B, _dst, Bytes, 5, "The first burst of 64-byte WRITEs");
    }

    [GlobalCleanup(Target = nameof(RdmaWrite64B))]
    public void CleanupWrite()
    {
        RnicBenchMachine.CheckPattern(_m.B, _dst, Bytes, 5, $"After {_posted} WRITEs");
        Console.WriteLine($"// {_posted} WRITEs, SQ full {_sqFull} times; {_m.Describe()}");
        _m.AssertHealthy();
        _m.Dispose();
    }

    /// <summary>The baseline: <see cref="Messages"/> items through a channel to a consumer thread, and the wait for the last.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Messages)]
    public void ChannelHandOffs()
    {
        int target = Volatile.Read(ref _taken) + Messages;
        var writer = _channel.Writer;
        for (int i = 0; i < Messages; i++)
            writer.TryWrite(i);
        var spin = new SpinWait();
        while (Volatile.Read(ref _taken) != target)
            spin.SpinOnce(sleep1Threshold: -1);
    }

    /// <summary><see cref="Messages"/> 64-byte WRITEs, every 64th signaled, and the wait for the last completion.</summary>
    [Benchmark(OperationsPerInvoke = Messages)]
    public void RdmaWrite64B()
    {
        int signaled = 0, completed = 0;
        for (int i = 0; i < Messages; i++)
        {
            bool signal = i % SignalEvery == SignalEvery - 1 || i == Messages - 1;
            var wr = (signal ? _signaled : _unsignaled) with { WrId = (ulong)++_posted };
            Errno err;
            while ((err = _m.Ca.PostSend(_m.QpA, wr)) == Errno.ENOMEM)
            {
                // The SQ frees slots only as signaled WRs complete; with 256 slots and one in 64 signaled, some are out.
                _sqFull++;
                if (completed == signaled)
                    throw new InvalidOperationException("The SQ is full with no signaled WR outstanding: nothing would free it.");
                _m.WaitCompletion();
                completed++;
            }
            RnicBenchMachine.Check(err, "PostSend");
            if (signal)
                signaled++;
        }
        while (completed < signaled)
        {
            _m.WaitCompletion();
            completed++;
        }
    }

    private void Consume()
    {
        var reader = _channel.Reader;
        do
        {
            while (reader.TryRead(out _))
                Interlocked.Increment(ref _taken);
        }
        while (WaitToRead(reader));
    }

    // Blocks the calling thread until the channel has an item (true) or is completed (false).
    private static bool WaitToRead(ChannelReader<int> reader)
    {
        var wait = reader.WaitToReadAsync();
        return wait.IsCompletedSuccessfully ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
    }
}
