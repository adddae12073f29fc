namespace HmmEmu.Rnic.Model;

/// <summary>
/// The timing and fault injection of a <see cref="RnicLink"/>. Times are in virtual nanoseconds, the bandwidth in
/// bytes per virtual nanosecond (1 byte/ns = 1 GB/s); each default names where its number comes from.
/// </summary>
public sealed record RnicLinkOptions
{
    /// <summary>The defaults: a 100 Gb/s link with about 1 µs of latency and no faults.</summary>
    public static RnicLinkOptions Default { get; } = new();

    /// <summary>
    /// One-way latency after a packet's last byte leaves the sender, in virtual ns: one switch hop, a few metres of
    /// cable and the receiving NIC's pipeline. Free parameter of the right order (about 1 µs), so 1 000.
    /// </summary>
    public ulong LatencyNs { get; init; } = 1_000;

    /// <summary>
    /// Line rate in bytes per ns, at least 1: a 100 Gb/s port carries 12.5 GB/s, so 12. A packet holds the wire for
    /// ceil(<see cref="RnicPacket.WireBytes"/> / BytesPerNs) ns.
    /// </summary>
    public ulong BytesPerNs { get; init; } = 12;

    /// <summary>Chance, in [0, 1], that a packet is lost on the wire and never delivered. Default 0 (a lossless fabric).</summary>
    public double LossProbability { get; init; }

    /// <summary>Chance, in [0, 1], that a packet is delivered twice. Default 0.</summary>
    public double DuplicateProbability { get; init; }

    /// <summary>Chance, in [0, 1], that a packet arrives <see cref="ReorderDelayNs"/> later than it would have, after its successors. Default 0.</summary>
    public double ReorderProbability { get; init; }

    /// <summary>
    /// How much later than its undisturbed arrival a reordered packet arrives, in virtual ns. Free parameter: 5 000
    /// (a detour through a second path) lets a reordered packet be overtaken by the next few packets even on an
    /// idle link, since that is several times <see cref="LatencyNs"/>.
    /// </summary>
    public ulong ReorderDelayNs { get; init; } = 5_000;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first option out of range and how to fix it.</summary>
    public void Validate()
    {
        if (BytesPerNs == 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(BytesPerNs), BytesPerNs,
                "RnicLinkOptions.BytesPerNs is 0, which would make every packet take forever; give the line rate in " +
                "bytes per ns, at least 1 (12 for 100 Gb/s).");
        }
        ValidateProbability(nameof(LossProbability), LossProbability, $"RnicLinkOptions.{nameof(LossProbability)}");
        ValidateProbability(nameof(DuplicateProbability), DuplicateProbability, $"RnicLinkOptions.{nameof(DuplicateProbability)}");
        ValidateProbability(nameof(ReorderProbability), ReorderProbability, $"RnicLinkOptions.{nameof(ReorderProbability)}");
    }

    /// <summary>
    /// Throws unless <paramref name="value"/> is a probability (NaN is not); <paramref name="paramName"/> is the
    /// exception's parameter, <paramref name="what"/> how the message names the setting.
    /// </summary>
    internal static void ValidateProbability(string paramName, double value, string what)
    {
        if (value is >= 0 and <= 1)
            return;
        throw new ArgumentOutOfRangeException(
            paramName, value,
            $"{what} is {value}, but a probability must be within [0, 1]; use 0 to turn the fault off and 1 to hit " +
            "every packet.");
    }
}
