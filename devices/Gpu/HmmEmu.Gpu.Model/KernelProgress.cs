namespace HmmEmu.Gpu.Model;

/// <summary>
/// How far a running kernel got: what a stalled context keeps so that the kernel resumes where it faulted instead of
/// starting again (atomics must not be applied twice). Owned by the compute engine's worker.
/// </summary>
internal struct KernelProgress
{
    /// <summary>Elements (bytes for Copy, steps for PointerChase) done.</summary>
    public ulong Done;

    /// <summary>ReduceSum's partial sum.</summary>
    public ulong Sum;

    /// <summary>PointerChase's current pointer.</summary>
    public ulong Pointer;

    /// <summary>Every element is done; only the result store (ReduceSum, PointerChase) is left.</summary>
    public bool Storing;
}
