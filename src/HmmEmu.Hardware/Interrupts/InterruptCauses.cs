using System.Numerics;
using HmmEmu.Hardware.Registers;

namespace HmmEmu.Hardware.Interrupts;

/// <summary>
/// A device's interrupt-cause registers in front of its <see cref="MsixTable"/>: INT_STATUS, whose bits latch causes
/// until the driver writes 1 to clear them, and INT_MASK, whose set bits keep a cause latched without sending its
/// vector. Each cause is routed to one vector. Clearing a mask bit sends the vector of a cause still latched (level
/// semantics), so a driver that masked a cause and unmasks it later does not lose the interrupt.
/// </summary>
/// <remarks>
/// Thread-safe and allocation-free after construction: the device raises causes from any thread while the driver
/// clears and masks through MMIO; the registers' atomic updates are the only synchronisation, and vectors are sent
/// outside any lock. One call sends each vector at most once, in vector order.
/// </remarks>
public sealed class InterruptCauses
{
    private readonly MsixTable _msix;
    private readonly (int Vector, uint Causes)[] _routes;   // one per vector used, in vector order

    /// <summary>
    /// Declares INT_STATUS (one W1C field per cause) at <paramref name="statusOffset"/> and INT_MASK (read-write, one
    /// bit per cause) at <paramref name="maskOffset"/> in <paramref name="file"/>, routing each cause to its vector of
    /// <paramref name="msix"/>. Both registers are 32-bit and reset to 0 (every cause clear and unmasked).
    /// </summary>
    public InterruptCauses(RegisterFile file, MsixTable msix, IReadOnlyList<InterruptCause> causes,
        ulong statusOffset, string statusDescription, ulong maskOffset, string maskDescription,
        string statusName = "INT_STATUS", string maskName = "INT_MASK")
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(msix);
        ArgumentNullException.ThrowIfNull(causes);
        if (causes.Count == 0)
            throw new ArgumentException($"{statusName} needs at least one cause.", nameof(causes));
        uint all = 0;
        foreach (var c in causes)
        {
            if (!uint.IsPow2(c.Bit))
                throw new ArgumentException($"Cause {c.Name}: Bit 0x{c.Bit:x} must have exactly one bit set.", nameof(causes));
            if ((all & c.Bit) != 0)
                throw new ArgumentException($"Cause {c.Name}: bit 0x{c.Bit:x} is already another cause's. Give each cause its own bit.", nameof(causes));
            if ((uint)c.Vector >= (uint)msix.VectorCount)
            {
                throw new ArgumentException(
                    $"Cause {c.Name}: vector {c.Vector} does not exist (the table has {msix.VectorCount}).", nameof(causes));
            }
            all |= c.Bit;
        }
        _msix = msix;
        AllCauses = all;
        _routes = [.. causes.GroupBy(static c => c.Vector)
            .OrderBy(static g => g.Key)
            .Select(static g => (g.Key, g.Aggregate(0u, static (bits, c) => bits | c.Bit)))];
        Status = file.Define(new RegisterDefinition
        {
            Offset = statusOffset,
            Name = statusName,
            Description = statusDescription,
            Fields = [.. causes.Select(static c => new RegisterField(c.Name, BitOperations.Log2(c.Bit), 1, FieldMode.WriteOneToClear))],
        });
        Mask = file.Define32(maskOffset, maskName, maskDescription, readWrite: all, onWrite: (_, mask) => SendLatched((uint)mask));
    }

    /// <summary>INT_STATUS: the latched causes (W1C).</summary>
    public Register Status { get; }

    /// <summary>INT_MASK: the causes held back from their vectors (RW).</summary>
    public Register Mask { get; }

    /// <summary>Every declared cause's bit.</summary>
    public uint AllCauses { get; }

    /// <summary>The causes latched now.</summary>
    public uint Latched => (uint)Status.Value;

    /// <summary>
    /// Device side: latches <paramref name="causes"/> in INT_STATUS and sends the vector of each one INT_MASK does not
    /// hold back. Never sleeps; any thread. Throws if a bit is not a declared cause (a model bug).
    /// </summary>
    public void Raise(uint causes)
    {
        if ((causes & ~AllCauses) != 0)
        {
            throw new ArgumentException(
                $"Cause bits 0x{causes & ~AllCauses:x} are not declared in {Status.Name} (declared: 0x{AllCauses:x}).", nameof(causes));
        }
        Status.SetBits(causes);
        Send(causes & ~(uint)Mask.Value);
    }

    /// <summary>The vector <paramref name="cause"/> (one declared cause bit) is sent on.</summary>
    public int VectorOf(uint cause)
    {
        foreach (var (vector, bits) in _routes)
        {
            if ((bits & cause) != 0 && uint.IsPow2(cause))
                return vector;
        }
        throw new ArgumentException($"0x{cause:x} is not one cause declared in {Status.Name} (declared: 0x{AllCauses:x}).", nameof(cause));
    }

    // After an INT_MASK write: causes latched and no longer masked are sent again.
    private void SendLatched(uint mask) => Send(Latched & ~mask);

    private void Send(uint causes)
    {
        if (causes == 0)
            return;
        foreach (var (vector, bits) in _routes)
        {
            if ((causes & bits) != 0)
                _msix.Raise(vector);
        }
    }
}
