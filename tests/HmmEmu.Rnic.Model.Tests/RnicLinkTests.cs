using HmmEmu.Simulation;

namespace HmmEmu.Rnic.Model.Tests;

public sealed class RnicLinkTests
{
    private const uint AddressA = 1;
    private const uint AddressB = 2;

    // 64-byte header + 1000-byte payload = 1064 wire bytes; ceil(1064 / 12) = 89 ns on the wire at the default rate.
    private const int Payload = 1000;
    private const ulong WireNs = 89;

    private static Scheduler NewScheduler(ulong seed = 1, SchedulerMode mode = SchedulerMode.Deterministic) =>
        Scheduler.Create(new SimulationOptions { Seed = seed, Mode = mode });

    private static RnicPacket Packet(uint psn, int payload = 0) =>
        new(new RnicPacketHeader(RnicPacketOpcode.SendOnly, RnicPacketFlags.None, DestQpn: 7, Psn: psn, SrcQpn: 9,
            PayloadLength: (uint)payload), new byte[payload]);

    /// <summary>Waits, in virtual time, until the link has delivered or dropped everything. Simulated thread only.</summary>
    private static void WaitQuiet(Scheduler s, RnicLink link)
    {
        while (!link.IsQuiet)
            s.Sleep(100);
    }

    /// <summary>Sends <paramref name="count"/> back-to-back packets A→B on a link with <paramref name="options"/>; returns B's receipts.</summary>
    private static List<Receipt> RunOneWay(ulong seed, RnicLinkOptions options, int count, ulong gapNs = 0)
    {
        using var s = NewScheduler(seed);
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b, options);
        s.Run(() =>
        {
            for (uint i = 0; i < count; i++)
            {
                link.Send(a, Packet(i));
                if (gapNs != 0)
                    s.Sleep(gapNs);
            }
            WaitQuiet(s, link);
        });
        return b.Received;
    }

    private static uint[] Psns(IEnumerable<Receipt> receipts) => [.. receipts.Select(r => r.Psn)];

    [Fact]
    public void Send_NoFaultsDeterministic_DeliversInSendOrderBothDirections()
    {
        using var s = NewScheduler(seed: 11);
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b);

        s.Run(() =>
        {
            var fromA = s.Spawn("sender a", () => { for (uint i = 0; i < 200; i++) { link.Send(a, Packet(i, 100)); s.Yield(); } });
            var fromB = s.Spawn("sender b", () => { for (uint i = 0; i < 200; i++) { link.Send(b, Packet(1000 + i)); s.Yield(); } });
            fromA.Join();
            fromB.Join();
            WaitQuiet(s, link);
        });

        Assert.Equal(Enumerable.Range(0, 200).Select(i => (uint)i), Psns(b.Received));
        Assert.Equal(Enumerable.Range(1000, 200).Select(i => (uint)i), Psns(a.Received));
        Assert.All(b.Received, r => Assert.Equal(AddressB, r.Address));
        Assert.All(a.Received, r => Assert.Equal(AddressA, r.Address));
        var stats = link.Stats;
        Assert.Equal(new RnicLinkStats(400, 400, 0, 0, 0, (200 * (64 + 100)) + (200 * 64)), stats);
    }

    [Fact]
    public void Send_NoFaultsThreaded_DeliversAllKeepingOrderPerDirection()
    {
        using var s = NewScheduler(seed: 12, SchedulerMode.Threaded);
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b);

        s.Run(() =>
        {
            var fromA = s.Spawn("sender a", () => { for (uint i = 0; i < 500; i++) link.Send(a, Packet(i)); });
            var fromB = s.Spawn("sender b", () => { for (uint i = 0; i < 500; i++) link.Send(b, Packet(1000 + i)); });
            fromA.Join();
            fromB.Join();
            WaitQuiet(s, link);
        });

        Assert.Equal(Enumerable.Range(0, 500).Select(i => (uint)i), Psns(b.Received));
        Assert.Equal(Enumerable.Range(1000, 500).Select(i => (uint)i), Psns(a.Received));
        Assert.Equal(0, link.InFlight);
    }

    [Fact]
    public void Send_SinglePacket_ArrivesAfterSerializationPlusLatency()
    {
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b);
        ulong sentAt = 0;

        s.Run(() =>
        {
            s.Sleep(333);
            sentAt = s.Clock.Now;
            link.Send(a, Packet(5, Payload));
            WaitQuiet(s, link);
        });

        var only = Assert.Single(b.Received);
        Assert.Equal(333UL, sentAt);
        Assert.Equal(sentAt + WireNs + RnicLinkOptions.Default.LatencyNs, only.Time);
    }

    [Fact]
    public void Send_BackToBackPackets_ArePipelinedAtLineRate()
    {
        const int count = 100;
        var received = RunOneWayWithPayload(count);

        Assert.Equal(count, received.Count);
        for (int i = 0; i < count; i++)
            Assert.Equal(((ulong)(i + 1) * WireNs) + RnicLinkOptions.Default.LatencyNs, received[i].Time);
        // Bandwidth-bound: the last packet lands one latency after the line has carried them all, far sooner than
        // one latency per packet.
        Assert.True(received[^1].Time < count * RnicLinkOptions.Default.LatencyNs / 10);

        static List<Receipt> RunOneWayWithPayload(int count)
        {
            using var s = NewScheduler();
            var a = new RecordingPort(s, AddressA);
            var b = new RecordingPort(s, AddressB);
            using var link = new RnicLink(s, a, b);
            s.Run(() =>
            {
                for (uint i = 0; i < count; i++)
                    link.Send(a, Packet(i, Payload));
                WaitQuiet(s, link);
            });
            return b.Received;
        }
    }

    [Fact]
    public void Send_LossOne_DeliversNothingAndCountsEveryPacketDropped()
    {
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b, new RnicLinkOptions { LossProbability = 1 });

        s.Run(() =>
        {
            for (uint i = 0; i < 50; i++)
            {
                link.Send(a, Packet(i));
                link.Send(b, Packet(i));
            }
            WaitQuiet(s, link);
        });

        Assert.Empty(a.Received);
        Assert.Empty(b.Received);
        Assert.Equal(new RnicLinkStats(100, 0, 100, 0, 0, 0), link.Stats);
        Assert.Equal(0, link.InFlight);
    }

    [Fact]
    public void Send_LossThirtyPercent_DeliversAboutSeventyPercent()
    {
        var delivered = RunOneWay(seed: 5, new RnicLinkOptions { LossProbability = 0.3 }, count: 1000);

        // Binomial(1000, 0.7): mean 700, sd 14.5; the band is about ±7 sd and the seed is fixed anyway.
        Assert.InRange(delivered.Count, 600, 800);
        var psns = Psns(delivered);
        Assert.Equal(psns.Order(), psns);
        Assert.Equal(psns.Distinct().Count(), psns.Length);
    }

    [Fact]
    public void Send_LossThirtyPercentSameSeed_DeliversSameSequence()
    {
        var options = new RnicLinkOptions { LossProbability = 0.3 };

        var first = RunOneWay(seed: 5, options, count: 1000);
        var second = RunOneWay(seed: 5, options, count: 1000);

        Assert.Equal(first, second);
    }

    [Fact]
    public void Send_LossThirtyPercentOtherSeed_DeliversDifferentSequence()
    {
        var options = new RnicLinkOptions { LossProbability = 0.3 };

        var first = RunOneWay(seed: 5, options, count: 1000);
        var other = RunOneWay(seed: 6, options, count: 1000);

        Assert.NotEqual(Psns(first), Psns(other));
    }

    [Fact]
    public void Send_DuplicateOne_DeliversEachPacketTwice()
    {
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b, new RnicLinkOptions { DuplicateProbability = 1 });

        s.Run(() =>
        {
            for (uint i = 0; i < 20; i++)
                link.Send(a, Packet(i));
            WaitQuiet(s, link);
        });

        Assert.Equal(Enumerable.Range(0, 20).SelectMany(i => new[] { (uint)i, (uint)i }), Psns(b.Received));
        var stats = link.Stats;
        Assert.Equal(20, stats.Sent);
        Assert.Equal(20, stats.Duplicated);
        Assert.Equal(40, stats.Delivered);
        Assert.Equal(0, link.InFlight);
    }

    [Fact]
    public void Send_ReorderTwentyPercent_DeliversEachOnceWithSomeOutOfOrder()
    {
        var received = RunOneWay(seed: 8, new RnicLinkOptions { ReorderProbability = 0.2 }, count: 200, gapNs: 500);

        var psns = Psns(received);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => (uint)i), psns.Order());
        Assert.Contains(Enumerable.Range(1, psns.Length - 1), i => psns[i] < psns[i - 1]);
        Assert.All(received.Zip(received.Skip(1)), p => Assert.True(p.First.Time <= p.Second.Time));
    }

    [Fact]
    public void Send_ReorderTwentyPercentSameSeed_DeliversInSameOrderAtSameTimes()
    {
        var options = new RnicLinkOptions { ReorderProbability = 0.2 };

        var first = RunOneWay(seed: 8, options, count: 200, gapNs: 500);
        var second = RunOneWay(seed: 8, options, count: 200, gapNs: 500);

        Assert.Equal(first, second);
    }

    [Fact]
    public void Send_ReorderedPacketOnIdleLink_IsOvertakenByLaterPacketsDeliveredOnTime()
    {
        // The worker holds the delayed packet; it must not sleep until that packet is due and make the later,
        // undelayed packets wait behind it.
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        var options = new RnicLinkOptions { ReorderProbability = 1 };
        using var link = new RnicLink(s, a, b, options);

        s.Run(() =>
        {
            link.Send(a, Packet(0, Payload));                        // t = 0, delayed
            link.SetFaults(loss: 0, duplicate: 0, reorder: 0);
            s.Sleep(2_000);
            link.Send(a, Packet(1, Payload));                        // t = 2000
            s.Sleep(1_000);
            link.Send(a, Packet(2, Payload));                        // t = 3000
            WaitQuiet(s, link);
        });

        ulong latency = options.LatencyNs;
        Assert.Equal(
            [
                new Receipt(AddressB, 1, 2_000 + WireNs + latency),
                new Receipt(AddressB, 2, 3_000 + WireNs + latency),
                new Receipt(AddressB, 0, WireNs + latency + options.ReorderDelayNs),
            ],
            b.Received);
        Assert.Equal(1, link.Stats.Reordered);
    }

    [Fact]
    public void SetFaults_LossOneMidRun_DropsOnlyLaterPackets()
    {
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b);

        s.Run(() =>
        {
            for (uint i = 0; i < 10; i++)
                link.Send(a, Packet(i));
            link.SetFaults(loss: 1, duplicate: 0, reorder: 0);
            for (uint i = 10; i < 20; i++)
                link.Send(a, Packet(i));
            WaitQuiet(s, link);
        });

        Assert.Equal(Enumerable.Range(0, 10).Select(i => (uint)i), Psns(b.Received));
        Assert.Equal(10, link.Stats.Dropped);
    }

    [Fact]
    public void IsQuiet_PacketsInFlight_FalseUntilAllDelivered()
    {
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b);
        bool quietBefore = true;
        int inFlightBefore = 0;
        bool quietHalfway = true;

        s.Run(() =>
        {
            for (uint i = 0; i < 10; i++)
                link.Send(a, Packet(i, Payload));
            quietBefore = link.IsQuiet;
            inFlightBefore = link.InFlight;
            s.Sleep(RnicLinkOptions.Default.LatencyNs + (5 * WireNs));  // the first five have landed
            quietHalfway = link.IsQuiet;
            WaitQuiet(s, link);
        });

        Assert.False(quietBefore);
        Assert.Equal(10, inFlightBefore);
        Assert.False(quietHalfway);
        Assert.True(link.IsQuiet);
        Assert.Equal(0, link.InFlight);
        Assert.Equal(10, b.Received.Count);
    }

    [Fact]
    public void IsQuiet_PortHoldsBacklog_False()
    {
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b);

        b.Backlog = 1;

        Assert.Equal(0, link.InFlight);
        Assert.False(link.IsQuiet);
    }

    [Theory]
    [InlineData(nameof(RnicLinkOptions.LossProbability), -0.1)]
    [InlineData(nameof(RnicLinkOptions.LossProbability), 1.5)]
    [InlineData(nameof(RnicLinkOptions.LossProbability), double.NaN)]
    [InlineData(nameof(RnicLinkOptions.DuplicateProbability), 2.0)]
    [InlineData(nameof(RnicLinkOptions.ReorderProbability), -1.0)]
    public void Constructor_ProbabilityOutOfRange_ThrowsNamingTheOption(string option, double value)
    {
        using var s = NewScheduler();
        var options = option switch
        {
            nameof(RnicLinkOptions.LossProbability) => new RnicLinkOptions { LossProbability = value },
            nameof(RnicLinkOptions.DuplicateProbability) => new RnicLinkOptions { DuplicateProbability = value },
            _ => new RnicLinkOptions { ReorderProbability = value },
        };

        var ex = Assert.Throws<ArgumentOutOfRangeException>(
            () => new RnicLink(s, new RecordingPort(s, AddressA), new RecordingPort(s, AddressB), options));

        Assert.Equal(option, ex.ParamName);
        Assert.Contains("[0, 1]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_ZeroBytesPerNs_ThrowsNamingTheOption()
    {
        using var s = NewScheduler();

        var ex = Assert.Throws<ArgumentOutOfRangeException>(
            () => new RnicLink(s, new RecordingPort(s, AddressA), new RecordingPort(s, AddressB), new RnicLinkOptions { BytesPerNs = 0 }));

        Assert.Equal(nameof(RnicLinkOptions.BytesPerNs), ex.ParamName);
    }

    [Fact]
    public void Constructor_SameAddressTwice_Throws()
    {
        using var s = NewScheduler();

        var ex = Assert.Throws<ArgumentException>(
            () => new RnicLink(s, new RecordingPort(s, AddressA), new RecordingPort(s, AddressA)));

        Assert.Contains("PORT_ADDRESS", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetFaults_ProbabilityOutOfRange_ThrowsNamingTheParameter()
    {
        using var s = NewScheduler();
        using var link = new RnicLink(s, new RecordingPort(s, AddressA), new RecordingPort(s, AddressB));

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => link.SetFaults(loss: 0, duplicate: 1.01, reorder: 0));

        Assert.Equal("duplicate", ex.ParamName);
    }

    [Fact]
    public void Send_FromForeignPort_Throws()
    {
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        using var link = new RnicLink(s, a, b);
        var stranger = new RecordingPort(s, 3);

        var ex = Assert.Throws<ArgumentException>(() => link.Send(stranger, Packet(0)));

        Assert.Equal("from", ex.ParamName);
        Assert.Equal(0, link.Stats.Sent);
    }

    [Fact]
    public void Dispose_PacketsOnTheWire_DropsThemAndInFlightReturnsToZero()
    {
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        var link = new RnicLink(s, a, b);
        // The workers are daemons: Run returns once main does, with the packets still on the wire.
        s.Run(() =>
        {
            for (uint i = 0; i < 100; i++)
            {
                link.Send(a, Packet(i, Payload));
                link.Send(b, Packet(i, Payload));
            }
        });
        int inFlightBefore = link.InFlight;

        link.Dispose();

        Assert.Equal(200, inFlightBefore);
        Assert.Equal(0, link.InFlight);
        var stats = link.Stats;
        Assert.Equal(200, stats.Sent);
        Assert.Equal(200, stats.Delivered + stats.Dropped);
        Assert.True(stats.Dropped > 0);
    }

    [Fact]
    public void Send_AfterDispose_DropsSilently()
    {
        using var s = NewScheduler();
        var a = new RecordingPort(s, AddressA);
        var b = new RecordingPort(s, AddressB);
        var link = new RnicLink(s, a, b);
        link.Dispose();

        s.Run(() =>
        {
            link.Send(a, Packet(1));
            s.Sleep(10_000);
        });

        Assert.Empty(b.Received);
        Assert.Equal(new RnicLinkStats(1, 0, 1, 0, 0, 0), link.Stats);
        Assert.Equal(0, link.InFlight);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void SendBurst_CleanLink_DeliversEveryPacketOnceInOrder(SchedulerMode mode)
    {
        using var s = Scheduler.Create(new SimulationOptions { Seed = 5, Mode = mode });
        var a = new RecordingPort(s, 1);
        var b = new RecordingPort(s, 2);
        using var link = new RnicLink(s, a, b);
        s.Run(() =>
        {
            var burst = new List<RnicPacket>();
            for (uint psn = 0; psn < 40; psn++)
                burst.Add(new RnicPacket(new RnicPacketHeader(RnicPacketOpcode.RdmaWriteMiddle, 0, 2, psn, 1), new byte[100]));
            link.SendBurst(a, burst);
            for (int i = 0; !link.IsQuiet && i < 100_000; i++)
                s.Sleep(100);
        });
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (uint)i), b.Received.Select(r => r.Psn));
        Assert.Equal(40, link.Stats.Delivered);
        Assert.Equal(0, link.InFlight);
    }

    private readonly record struct Receipt(uint Address, uint Psn, ulong Time);

    /// <summary>A port that records what it receives (its address, the PSN, and the virtual time of receipt).</summary>
    private sealed class RecordingPort(Scheduler scheduler, uint address) : IRnicPort
    {
        private readonly Lock _lock = new();
        private readonly List<Receipt> _received = [];
        private int _backlog;

        public uint Address => address;

        public int ReceiveBacklog => Volatile.Read(ref _backlog);

        public int Backlog
        {
            set => Volatile.Write(ref _backlog, value);
        }

        public List<Receipt> Received
        {
            get { lock (_lock) return [.. _received]; }
        }

        public void Receive(RnicPacket packet)
        {
            var receipt = new Receipt(address, packet.Header.Psn, scheduler.Clock.Now);
            lock (_lock)
                _received.Add(receipt);
        }

        public void ReceiveBurst(IReadOnlyList<RnicPacket> packets)
        {
            foreach (var packet in packets)
                Receive(packet);
        }
    }
}
