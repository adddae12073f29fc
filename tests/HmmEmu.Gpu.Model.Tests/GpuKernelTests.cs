using System.Buffers.Binary;
using System.Runtime.InteropServices;
using HmmEmu.Simulation;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Model.Tests;

/// <summary>Every kernel's result against a plain CPU computation, over several pages, in system RAM and in VRAM.</summary>
public sealed class GpuKernelTests
{
    private const int Ctx = 3;
    private const ulong VaA = 0x10_0000_0000;
    private const ulong VaB = 0x20_0000_0000;
    private const ulong VaC = 0x30_0000_0000;
    private const ulong Skew = 0x40;          // arrays start inside their first page: spans cross page boundaries unaligned

    public static TheoryData<GpuKernel, bool, SchedulerMode> Cases()
    {
        var data = new TheoryData<GpuKernel, bool, SchedulerMode>();
        foreach (var k in new[] { GpuKernel.Fill, GpuKernel.Copy, GpuKernel.Saxpy, GpuKernel.ReduceSum, GpuKernel.AtomicAdd, GpuKernel.PointerChase })
        {
            data.Add(k, false, SchedulerMode.Deterministic);
            data.Add(k, true, SchedulerMode.Deterministic);
        }
        data.Add(GpuKernel.Saxpy, false, SchedulerMode.Threaded);
        data.Add(GpuKernel.AtomicAdd, true, SchedulerMode.Threaded);
        data.Add(GpuKernel.Copy, true, SchedulerMode.Threaded);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Launch_Kernel_MatchesCpuComputation(GpuKernel kernel, bool vram, SchedulerMode mode)
    {
        using var m = GpuTestMachine.Create(mode);
        byte[] expected = [], actual = [];
        ulong fenceValue = 0, completed = 0;
        GpuContextState state = GpuContextState.Error;
        uint faults = 99;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(Ctx);
            const int bytes = 8 * 4096;
            var a = DeviceArray.Create(m, Ctx, VaA, bytes, vram, vramOffset: 0);
            var b = DeviceArray.Create(m, Ctx, VaB, bytes, vram, vramOffset: 0x10_0000);
            var c = DeviceArray.Create(m, Ctx, VaC, 4096, vram, vramOffset: 0x20_0000);
            Pattern(a.Span, 1);
            Pattern(b.Span, 2);
            var cpuA = a.Span.ToArray();
            var cpuB = b.Span.ToArray();
            var cpuC = c.Span.ToArray();
            const ulong n = 4000;                 // elements: 16000 or 32000 bytes from Skew, 4 to 8 pages
            ulong fence;
            switch (kernel)
            {
                case GpuKernel.Fill:
                    fence = m.Launch(Ctx, kernel, VaA + Skew, n, 0xDEADBEEF);
                    MemoryMarshal.Cast<byte, uint>(cpuA.AsSpan((int)Skew, (int)n * 4)).Fill(0xDEADBEEF);
                    break;
                case GpuKernel.Copy:
                    fence = m.Launch(Ctx, kernel, VaA + 8, VaB + Skew, 3 * 4096 + 123);
                    cpuB.AsSpan((int)Skew, (3 * 4096) + 123).CopyTo(cpuA.AsSpan(8));
                    break;
                case GpuKernel.Saxpy:
                {
                    FloatPattern(a.Span);
                    FloatPattern(b.Span);
                    cpuA = a.Span.ToArray();
                    cpuB = b.Span.ToArray();
                    float s = 1.75f;
                    fence = m.Launch(Ctx, kernel, VaA + Skew, VaB + 4, n, (uint)BitConverter.SingleToInt32Bits(s));
                    var y = MemoryMarshal.Cast<byte, float>(cpuA.AsSpan((int)Skew, (int)n * 4));
                    var x = MemoryMarshal.Cast<byte, float>(cpuB.AsSpan(4, (int)n * 4));
                    for (int i = 0; i < y.Length; i++)
                        y[i] = (s * x[i]) + y[i];
                    break;
                }
                case GpuKernel.ReduceSum:
                {
                    fence = m.Launch(Ctx, kernel, VaC + 16, VaB + Skew, n);
                    ulong sum = 0;
                    foreach (uint v in MemoryMarshal.Cast<byte, uint>(cpuB.AsSpan((int)Skew, (int)n * 4)))
                        sum += v;
                    BinaryPrimitives.WriteUInt64LittleEndian(cpuC.AsSpan(16), sum);
                    break;
                }
                case GpuKernel.AtomicAdd:
                {
                    fence = m.Launch(Ctx, kernel, VaA + Skew, n, 0x1_0000_0003);
                    var e = MemoryMarshal.Cast<byte, ulong>(cpuA.AsSpan((int)Skew, (int)n * 8));
                    for (int i = 0; i < e.Length; i++)
                        e[i] += 0x1_0000_0003;
                    break;
                }
                default:
                {
                    // A chain through every page of b in a scattered order, then into a and back.
                    var bs = b.Span;
                    ulong[] nodes = [VaB + 0x18, VaB + (3 * 4096) + 0x100, VaA + (4 * 4096) + 8, VaB + 4096, VaB + (4 * 4096) + 0xFF8, VaA];
                    for (int i = 0; i < nodes.Length - 1; i++)
                        WriteAt(a, b, nodes[i], nodes[i + 1]);
                    cpuA = a.Span.ToArray();
                    cpuB = bs.ToArray();
                    fence = m.Launch(Ctx, kernel, nodes[0], (ulong)nodes.Length - 1, VaC + 8);
                    BinaryPrimitives.WriteUInt64LittleEndian(cpuC.AsSpan(8), nodes[^1]);
                    break;
                }
            }
            m.WaitFence(fence, "the kernel's fence");
            fenceValue = m.ReadFence(fence);
            completed = m.Completed(Ctx);
            state = m.State(Ctx);
            faults = m.Model.FaultsTaken;
            expected = [.. cpuA, .. cpuB, .. cpuC];
            actual = [.. a.Span, .. b.Span, .. c.Span];
        });

        Assert.Equal(0xF00DUL, fenceValue);
        Assert.Equal(1UL, completed);
        Assert.Equal(GpuContextState.Idle, state);
        Assert.Equal(0u, faults);
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"{kernel} result differs from the CPU's");
    }

    [Fact]
    public void Launch_TwoContextsInterleaved_BothCompleteWithIntFence()
    {
        using var m = GpuTestMachine.Create();
        bool ok1 = false, ok2 = false;
        long events = 0;

        m.Run(() =>
        {
            m.Start();
            m.CreateContext(1);
            m.CreateContext(2);
            var a = DeviceArray.Create(m, 1, VaA, 8 * 4096, vram: false);
            var b = DeviceArray.Create(m, 2, VaA, 8 * 4096, vram: true);
            ulong f1 = m.Launch(1, GpuKernel.Fill, VaA, 8 * 1024, 7, flags: GpuCommandFlags.Interrupt);
            ulong f2 = m.Launch(2, GpuKernel.Fill, VaA, 8 * 1024, 9, flags: GpuCommandFlags.Interrupt);
            m.WaitFence(f1, "fence 1");
            m.WaitFence(f2, "fence 2");
            m.Bus.SynchronizeInterrupts();
            ok1 = MemoryMarshal.Cast<byte, uint>(a.Span).IndexOfAnyExcept(7u) < 0;
            ok2 = MemoryMarshal.Cast<byte, uint>(b.Span).IndexOfAnyExcept(9u) < 0;
            events = m.VectorCount(VectorEvents);
            Assert.NotEqual(0u, m.R32(IntStatus) & IntFence);
        });

        Assert.True(ok1);
        Assert.True(ok2);
        Assert.True(events >= 1);
    }

    internal static void Pattern(Span<byte> s, int salt)
    {
        for (int i = 0; i < s.Length; i++)
            s[i] = (byte)((i * 31) + (i >> 9) + salt);
    }

    private static void FloatPattern(Span<byte> s)
    {
        var f = MemoryMarshal.Cast<byte, float>(s);
        for (int i = 0; i < f.Length; i++)
            f[i] = ((i % 97) * 0.37f) - 11.5f;
    }

    private static void WriteAt(DeviceArray a, DeviceArray b, ulong va, ulong value)
    {
        var arr = va >= VaB ? b : a;
        BinaryPrimitives.WriteUInt64LittleEndian(arr.Span[(int)(va - arr.Va)..], value);
    }
}
