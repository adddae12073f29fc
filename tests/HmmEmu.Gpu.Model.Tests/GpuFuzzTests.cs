using System.Runtime.InteropServices;
using HmmEmu.Simulation;
using static HmmEmu.Gpu.GpuRegisters;

namespace HmmEmu.Gpu.Model.Tests;

/// <summary>
/// Random register writes and random command entries (from a seeded source) never throw into the host, and after a
/// function-level reset the device is programmed again and runs a kernel correctly.
/// </summary>
public sealed class GpuFuzzTests
{
    private static readonly ulong[] s_offsets =
    [
        Control, Status, IntStatus, IntMask, CmdTail, FaultGet, FaultReplay, FaultCancel, TlbiContext, TlbiAddress,
        TlbiSize, TlbiTrigger, CeSqTail, CeCqHead, CmdBase, FaultSize, ContextBlock(1) + CtxControl,
        ContextBlock(2) + CtxControl, ContextBlock(1) + CtxPtBase, 0x3FF8, 0x002, MsixVectorControl(1),
    ];

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(3UL)]
    [InlineData(4UL)]
    public void RandomRegisterWritesAndCommands_NoHostException_DeviceWorksAfterReset(ulong seed)
    {
        using var m = GpuTestMachine.Create(SchedulerMode.Deterministic, seed);
        ulong fence = 0;
        bool filled = false;

        m.Run(() =>
        {
            m.Start();
            var rng = m.Kernel.CreateRandom("gpu fuzz");
            m.CreateContext(1);
            m.CreateContext(2);
            DeviceArray.Create(m, 1, 0x1000_0000, 2 * 4096, vram: false);
            for (int i = 0; i < 300; i++)
            {
                switch (rng.NextInt(4))
                {
                    case 0:
                    {
                        ulong offset = s_offsets[rng.NextInt(s_offsets.Length)];
                        ulong value = rng.NextInt(3) == 0 ? rng.NextUInt64() : (ulong)rng.NextInt(8);
                        if ((offset & 7) == 0 && rng.NextInt(2) == 0)
                            m.W64(offset, value);
                        else
                            m.W32(offset & ~3UL, (uint)value);
                        break;
                    }
                    case 1:
                    {
                        var cmd = new GpuCommand((GpuOpcode)rng.NextInt(3), (GpuCommandFlags)rng.NextInt(3),
                            (ushort)rng.NextInt(18), (GpuKernel)rng.NextInt(8), m.NewFence(), (ulong)i + 1,
                            0x1000_0000 + (ulong)(rng.NextInt(3) * 4), (ulong)rng.NextInt(3000), (ulong)rng.NextInt(5000),
                            0x1000_0000 + (ulong)rng.NextInt(4096), (ulong)rng.NextInt(4));
                        m.Submit(cmd);
                        break;
                    }
                    case 2:
                        m.R32(s_offsets[rng.NextInt(s_offsets.Length)] & ~3UL);
                        break;
                    default:
                        m.Idle((ulong)rng.NextInt(20_000));
                        break;
                }
            }
            m.Dev.FunctionLevelReset();
            for (int v = 0; v < Vectors; v++)
                m.W32(MsixVectorControl(v), 0);
            m.Program();
            m.CreateContext(3);
            var a = DeviceArray.Create(m, 3, 0x2000_0000, 3 * 4096, vram: true, vramOffset: 0x60_0000);
            ulong f = m.Launch(3, GpuKernel.Fill, 0x2000_0000, 3 * 1024, 0x77);
            m.WaitFence(f, "the fence after reset");
            fence = m.ReadFence(f);
            filled = MemoryMarshal.Cast<byte, uint>(a.Span).IndexOfAnyExcept(0x77u) < 0;
        });

        Assert.Equal(0xF00DUL, fence);
        Assert.True(filled);
    }
}
