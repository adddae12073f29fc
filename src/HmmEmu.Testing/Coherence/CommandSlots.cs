namespace HmmEmu.Testing.Coherence;

/// <summary>
/// The per-command resources of one open device in an adapter (a bounce buffer, a hardware context, a QP pair): slot
/// <c>i</c> belongs to one command at a time. Two slots, because a concurrent pair is the most that uses one open device
/// at once. Lock-free: <see cref="Take"/> runs on simulated threads, which must not block on a host lock.
/// </summary>
internal sealed class CommandSlots(string device)
{
    /// <summary>Slots per open device.</summary>
    public const int Count = 2;

    private int _inUse;                                      // bit i: slot i is taken

    /// <summary>Takes a free slot; throws if both are taken (the suite never runs three commands on one device).</summary>
    public int Take()
    {
        while (true)
        {
            int used = Volatile.Read(ref _inUse);
            int slot = (used & 1) == 0 ? 0 : (used & 2) == 0 ? 1 : throw new InvalidOperationException($"more than {Count} commands use one {device} at once");
            if (Interlocked.CompareExchange(ref _inUse, used | (1 << slot), used) == used)
                return slot;
        }
    }

    /// <summary>Gives <paramref name="slot"/> back.</summary>
    public void Return(int slot) => Interlocked.And(ref _inUse, ~(1 << slot));
}
