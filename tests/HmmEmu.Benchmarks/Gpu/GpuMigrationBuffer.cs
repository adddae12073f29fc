using HmmEmu.Gpu.Driver;

namespace HmmEmu.Benchmarks.Gpu;

/// <summary>
/// The migration benchmarks' fixture: a <see cref="GpuBenchMachine"/> with one populated 64 MiB buffer that
/// <see cref="Move"/> prefetches to VRAM or back, counting the moves so that <see cref="CheckAndDispose"/> can compare
/// them with the device's migration counters and check the buffer's contents.
/// </summary>
internal sealed class GpuMigrationBuffer
{
    public const ulong Bytes = 64UL << 20;
    private const long Pages = (long)(Bytes >> 12);

    private readonly GpuBenchMachine _m;
    private readonly ulong _buf;
    private readonly long _vramBefore;
    private readonly long _systemBefore;
    private long _toVram;
    private long _toSystem;

    /// <summary>Boots the machine, fills the buffer with a pattern and moves it there and back a few times (JIT warm-up).</summary>
    public GpuMigrationBuffer()
    {
        _m = new GpuBenchMachine(ramBytes: 256UL << 20, vramBytes: 256UL << 20);
        _buf = _m.MapAnonymous(Bytes);
        var words = new ulong[Bytes / sizeof(ulong)];
        for (int i = 0; i < words.Length; i++)
            words[i] = Pattern(i);
        _m.Write<ulong>(_buf, words);
        // One invocation per iteration would otherwise measure tier-0 JIT code in the first iterations (measured:
        // about 3× slower); four round trips here let the migration path tier up before BDN starts.
        for (int round = 0; round < 4; round++)
        {
            Move(GpuMemoryTarget.Vram);
            Move(GpuMemoryTarget.System);
        }
        Thread.Sleep(500);          // the background tier-1 compilations finish
        _toVram = _toSystem = 0;
        _vramBefore = _m.Device.PagesToVram;
        _systemBefore = _m.Device.PagesToSystem;
    }

    /// <summary>Whether the buffer is in VRAM (by the moves made).</summary>
    public bool InVram => _toVram != _toSystem;

    /// <summary>Prefetches the whole buffer to <paramref name="target"/>.</summary>
    public void Move(GpuMemoryTarget target)
    {
        _m.PrefetchOk(_buf, Bytes, target);
        if (target == GpuMemoryTarget.Vram)
            _toVram++;
        else
            _toSystem++;
    }

    /// <summary>Checks that every move moved every page and the contents survived, then shuts the machine down.</summary>
    public void CheckAndDispose()
    {
        long toVram = _m.Device.PagesToVram - _vramBefore, toSystem = _m.Device.PagesToSystem - _systemBefore;
        if (_toVram == 0 || toVram != _toVram * Pages || toSystem != _toSystem * Pages)
        {
            throw new InvalidOperationException(
                $"Expected {_toVram} × {Pages} pages to VRAM and {_toSystem} × {Pages} back, counted {toVram} and {toSystem}.");
        }
        _m.AssertHealthy();
        foreach (ulong i in (ReadOnlySpan<ulong>)[0, 1, 511, 512, 4_000_001, (Bytes / sizeof(ulong)) - 1])
        {
            ulong v = _m.Read<ulong>(_buf + (i * sizeof(ulong)));
            if (v != Pattern((int)i))
                throw new InvalidOperationException($"Word {i} is 0x{v:x} after the migrations, expected 0x{Pattern((int)i):x}.");
        }
        _m.Dispose();
    }

    private static ulong Pattern(int i) => ((ulong)i * 0x9E3779B97F4A7C15UL) ^ 0x5555;
}
