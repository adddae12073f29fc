namespace HmmEmu.Hardware.Dma;

/// <summary>
/// Limits and virtual-time costs of a <see cref="DmaEngine"/>. The defaults are free parameters of the right order
/// for a PCIe-attached copy engine.
/// </summary>
public sealed record DmaEngineOptions
{
    /// <summary>The defaults.</summary>
    public static DmaEngineOptions Default { get; } = new();

    /// <summary>
    /// Transfer bandwidth in bytes per virtual nanosecond (16 = 16 GB/s, the asymptote of the PCIe model in
    /// UVMSmart's <c>calculate_transfer_time</c>). Data moved costs <c>ceil(bytes / BytesPerNs)</c> ns.
    /// </summary>
    public ulong BytesPerNs { get; init; } = 16;

    /// <summary>Fixed cost per descriptor (entry fetch, completion write), in virtual ns. Free parameter.</summary>
    public ulong DescriptorNs { get; init; } = 100;

    /// <summary>
    /// The engine charges virtual time (a yield point, where a reset can arrive) each time it has moved this many
    /// bytes, and at the end of a descriptor. A power of two of at least 4 KiB; default 64 KiB.
    /// </summary>
    public int ChargeQuantumBytes { get; init; } = 64 << 10;

    /// <summary>The largest length a descriptor may ask for; longer ones complete as <see cref="DmaStatus.BadDescriptor"/>. Default 64 MiB.</summary>
    public uint MaxTransferBytes { get; init; } = 64u << 20;

    /// <summary>
    /// Threaded mode only: rounds of 16 <c>Thread.SpinWait(1)</c> calls (about 0.7 µs a round on the project machine)
    /// the idle worker spins for the next doorbell before it sleeps; 0 sleeps at once. Default 10 (about 7 µs, the spin
    /// a <c>SemaphoreSlim</c> does before it blocks): a doorbell rung that soon needs no thread wake-up, and the
    /// doorbell round trip falls from 7–20 µs to about 2 µs (docs/benchmarks.md (e)).
    /// </summary>
    public int IdleSpinRounds { get; init; } = 10;

    /// <summary>Virtual ns to move <paramref name="bytes"/>.</summary>
    public ulong TransferNs(ulong bytes) => BytesPerNs == 0 ? 0 : (bytes + BytesPerNs - 1) / BytesPerNs;
}
