using HmmEmu.Kernel.Fs;

namespace HmmEmu.Testing.Selftests;

/// <summary>The selftests' struct hmm_buffer: the mapping under test and the "mirror" buffer the device copies to and from.</summary>
public sealed class HmmBuffer
{
    private ulong _ptr;

    /// <summary>The mapping the device accesses (read with <see cref="Volatile"/>: anon_teardown clears it from another thread).</summary>
    public ulong Ptr
    {
        get => Volatile.Read(ref _ptr);
        set => Volatile.Write(ref _ptr, value);
    }

    /// <summary>The caller's buffer (its own anonymous mapping) that device data is copied to or from.</summary>
    public ulong Mirror { get; set; }

    /// <summary>Size of <see cref="Ptr"/>'s mapping in bytes.</summary>
    public ulong Size { get; set; }

    /// <summary>Size of the mirror buffer in bytes.</summary>
    public ulong MirrorSize { get; set; }

    /// <summary>The backing file, for file tests.</summary>
    public SimFile? File { get; set; }

    /// <summary>cpages of the last successful command.</summary>
    public ulong CPages { get; set; }

    /// <summary>faults of the last successful command.</summary>
    public ulong Faults { get; set; }
}
