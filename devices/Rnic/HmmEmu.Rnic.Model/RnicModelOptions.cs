namespace HmmEmu.Rnic.Model;

/// <summary>
/// The object limits and virtual-time costs of a <see cref="RnicModel"/>. Bandwidths are bytes per virtual nanosecond
/// (1 byte/ns = 1 GB/s); each default says where its number comes from or that it is a free parameter.
/// </summary>
public sealed record RnicModelOptions
{
    /// <summary>The defaults.</summary>
    public static RnicModelOptions Default { get; } = new();

    /// <summary>This port's address on the link (PORT_ADDRESS); a peer puts it in its QPs' AV. Default 1.</summary>
    public uint PortAddress { get; init; } = 1;

    /// <summary>Protection domains the device holds (MAX_PD). Default 256.</summary>
    public uint MaxPd { get; init; } = 256;

    /// <summary>Memory regions the device holds (MAX_MR, at most 65535: the index tags the translation cache). Default 4096.</summary>
    public uint MaxMr { get; init; } = 4096;

    /// <summary>Completion queues the device holds (MAX_CQ). Default 256.</summary>
    public uint MaxCq { get; init; } = 256;

    /// <summary>Queue pairs the device holds (MAX_QP). Default 256.</summary>
    public uint MaxQp { get; init; } = 256;

    /// <summary>Largest SQ or RQ, in entries (a power of two). Default 4096.</summary>
    public uint MaxQpWr { get; init; } = 4096;

    /// <summary>Largest CQ, in entries (a power of two). Default 4096.</summary>
    public uint MaxCqe { get; init; } = 4096;

    /// <summary>Outstanding READ/atomic requests per QP, as initiator and as responder. Default 16 (mlx5 reports 16).</summary>
    public byte MaxRdAtomic { get; init; } = 16;

    /// <summary>Largest MTT of one MR in entries. Default 2^20 (4 GiB of 4 KiB pages).</summary>
    public uint MaxMtt { get; init; } = 1u << 20;

    /// <summary>The port's active MTU. Default 4096 (RoCE and IB both top out there).</summary>
    public RnicMtu ActiveMtu { get; init; } = RnicMtu.Mtu4096;

    /// <summary>
    /// Packets a QP may have sent and not yet seen acknowledged before its requester waits. Free parameter; real NICs
    /// bound this by their retransmission buffers (order of 100 packets). Default 128.
    /// </summary>
    public int SendWindowPackets { get; init; } = 128;

    /// <summary>
    /// The requester asks for an ACK at least every this many packets of a long message. Default 64, SoftRoCE's
    /// RXE_MAX_PKT_PER_ACK (rxe asks on the packet that finds more than 64 unacknowledged); half the default send window,
    /// so the window keeps moving.
    /// </summary>
    public int AckRequestInterval { get; init; } = 64;

    /// <summary>
    /// Threaded mode only: rounds (each <c>Thread.SpinWait(16)</c>, about 0.7 µs on the project machine) the requester
    /// engine spins for the next doorbell before its thread sleeps, as the DMA engine's <c>IdleSpinRounds</c>. A program
    /// that posts again soon after a completion then finds it awake instead of paying a thread wake-up. Only the
    /// requester spins: with zero-copy segments the far side's responder and this side's completer run on the
    /// requester's thread when they are idle, so they have nothing to wait for. Default 10; 0 sleeps at once.
    /// </summary>
    public int RequesterIdleSpinRounds { get; init; } = 10;

    /// <summary>Fixed cost per packet built or executed (WQE parse, header, doorbell-to-wire), in virtual ns. Free parameter of order 100 ns.</summary>
    public ulong PacketNs { get; init; } = 100;

    /// <summary>Fixed cost of one command, in virtual ns: the 64-byte fetch and completion write over PCIe (~0.5 µs).</summary>
    public ulong CommandNs { get; init; } = 500;

    /// <summary>Host-memory DMA bandwidth in bytes per ns: PCIe 3.0 x16 carries ~12 GB/s in practice, so 12.</summary>
    public ulong DmaBytesPerNs { get; init; } = 12;

    /// <summary>Cost of reading one MTT entry on a translation-cache miss (a PCIe read), in virtual ns. Free parameter (~0.5 µs).</summary>
    public ulong MttReadNs { get; init; } = 500;

    /// <summary>Sets of the MTT translation cache (a power of two). Default 256.</summary>
    public int CacheSets { get; init; } = 256;

    /// <summary>Ways per set of the MTT translation cache. Default 4 (1024 entries = 4 MiB of reach).</summary>
    public int CacheWays { get; init; } = 4;

    /// <summary>
    /// How often the retransmission timer looks at its deadlines while any is armed, in virtual ns. The timer sleeps at
    /// most this long, so an earlier deadline armed meanwhile is late by at most this much. Default 4 µs.
    /// </summary>
    public ulong TimerTickNs { get; init; } = 4_000;

    /// <summary>Throws when an option is out of range, naming it and the fix.</summary>
    public void Validate()
    {
        static void Check(bool ok, string name, object value, string rule)
        {
            if (!ok)
                throw new ArgumentOutOfRangeException(name, value, $"RnicModelOptions.{name} {rule}.");
        }
        static bool Pow2(uint v) => v >= RnicRegisters.MinQueueEntries && (v & (v - 1)) == 0;
        Check(MaxPd is >= 1 and <= RnicKey.MaxIndex, nameof(MaxPd), MaxPd, "must be from 1 to 2^24-1");
        Check(MaxMr is >= 1 and <= ushort.MaxValue, nameof(MaxMr), MaxMr, "must be from 1 to 65535 (the index tags the translation cache)");
        Check(MaxCq is >= 1 and <= RnicKey.MaxIndex, nameof(MaxCq), MaxCq, "must be from 1 to 2^24-1");
        Check(MaxQp is >= 1 and <= RnicKey.MaxIndex - 2, nameof(MaxQp), MaxQp, "must be from 1 to 2^24-3");
        Check(Pow2(MaxQpWr) && MaxQpWr <= 1u << 15, nameof(MaxQpWr), MaxQpWr, "must be a power of two from 2 to 32768");
        Check(Pow2(MaxCqe) && MaxCqe <= 1u << 15, nameof(MaxCqe), MaxCqe, "must be a power of two from 2 to 32768");
        Check(MaxRdAtomic >= 1, nameof(MaxRdAtomic), MaxRdAtomic, "must be at least 1");
        Check(MaxMtt >= 1, nameof(MaxMtt), MaxMtt, "must be at least 1");
        Check(ActiveMtu is >= RnicMtu.Mtu256 and <= RnicMtu.Mtu4096, nameof(ActiveMtu), ActiveMtu, "must be one of the five IB MTUs");
        Check(SendWindowPackets is >= 1 and <= 1 << 20, nameof(SendWindowPackets), SendWindowPackets, "must be from 1 to 2^20");
        Check(AckRequestInterval >= 1, nameof(AckRequestInterval), AckRequestInterval, "must be at least 1");
        Check(DmaBytesPerNs >= 1, nameof(DmaBytesPerNs), DmaBytesPerNs, "must be at least 1");
        Check(TimerTickNs >= 1, nameof(TimerTickNs), TimerTickNs, "must be at least 1");
        Check(RequesterIdleSpinRounds >= 0, nameof(RequesterIdleSpinRounds), RequesterIdleSpinRounds, "must not be negative");
    }
}
