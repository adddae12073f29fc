using HmmEmu.Hardware.Interrupts;
using HmmEmu.Hardware.Registers;
using HmmEmu.Kernel.Bus;

namespace HmmEmu.Hardware.Tests.Interrupts;

/// <summary>
/// A tiny PCI function built from the blocks: BAR0 is a register file with a scratch register, a W1C status register,
/// and the interrupt table's registers (control 0x100, vector controls 0x400, pending bits 0x800).
/// </summary>
internal sealed class MsixTestDevice : IPciDevice
{
    public const ushort Vendor = 0x1234;
    public const ushort Device = 0x11e8;
    public const ulong ScratchOffset = 0x04;
    public const ulong StatusOffset = 0x08;
    public const ulong ControlOffset = 0x100;
    public const ulong TableOffset = 0x400;
    public const ulong PbaOffset = 0x800;

    public MsixTestDevice(int vectors = 4, bool maskedAtReset = false)
    {
        Bar0 = new RegisterFile("msixtest.bar0", 0x1000);
        Bar0.Define32(0x00, "ID", "Identity.", reset: 0x010000ed);
        Scratch = Bar0.Define32(ScratchOffset, "SCRATCH", "Scratch.", reset: 0x5a5a, readWrite: ~0u);
        Status = Bar0.Define32(StatusOffset, "STATUS", "Interrupt status.", writeOneToClear: 0xff);
        Msix = new MsixTable(vectors, maskedAtReset);
        Msix.MapRegisters(Bar0, ControlOffset, TableOffset, PbaOffset);
        Bars = [Bar0];
    }

    public RegisterFile Bar0 { get; }

    public Register Scratch { get; }

    public Register Status { get; }

    public MsixTable Msix { get; }

    public ushort VendorId => Vendor;

    public ushort DeviceId => Device;

    public uint ClassCode => 0x00ff00;

    public IReadOnlyList<IMmio?> Bars { get; }

    public int VectorCount => Msix.VectorCount;

    public void Attach(IInterruptSink interrupts) => Msix.Connect(interrupts);

    public void FunctionLevelReset() => Bar0.Reset();
}
