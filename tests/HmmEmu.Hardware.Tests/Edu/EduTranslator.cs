using HmmEmu.Hardware.Mmu;
using HmmEmu.Hardware.Translation;
using HmmEmu.Simulation;

namespace HmmEmu.Hardware.Tests.Edu;

/// <summary>
/// The edu DMA engine's translation step: address-space id 0 is bypass (bus addresses, 1:1 onto system RAM), every
/// other id goes through the device MMU. Every descriptor's transfer still runs inside one MMU use, so invalidations
/// wait for transfers in any address space. Carries a test knob, the gate, that holds a transfer before a chosen
/// translation so that tests can act while a DMA is provably in flight in either scheduler mode.
/// </summary>
internal sealed class EduTranslator : ITranslator
{
    private readonly BusAddressTranslator _bus;
    private readonly DeviceMmu _mmu;
    private readonly SimWaitQueue _gateQueue;
    private int _gateCountdown = -1;   // translations to let through before holding; -1: gate open
    private int _gateHeld;             // 1 while a transfer is held at the gate
    private int _gateReleased;

    /// <summary>Creates the translator over <paramref name="bus"/> (id 0) and <paramref name="mmu"/> (other ids).</summary>
    public EduTranslator(Scheduler scheduler, BusAddressTranslator bus, DeviceMmu mmu)
    {
        _bus = bus;
        _mmu = mmu;
        _gateQueue = new SimWaitQueue(scheduler, "edu dma gate");
    }

    /// <summary>Whether a transfer is held at the gate now.</summary>
    public bool GateHeld => Volatile.Read(ref _gateHeld) != 0;

    /// <summary>
    /// Test knob: the transfer that makes translation number <paramref name="translationsBefore"/> + 1 (counted from
    /// now) stops before it until <see cref="ReleaseGate"/>.
    /// </summary>
    public void ArmGate(int translationsBefore)
    {
        Volatile.Write(ref _gateReleased, 0);
        Volatile.Write(ref _gateCountdown, translationsBefore);
    }

    /// <summary>Test knob: lets a held transfer go on and opens the gate.</summary>
    public void ReleaseGate()
    {
        Volatile.Write(ref _gateCountdown, -1);
        Volatile.Write(ref _gateReleased, 1);
        _gateQueue.WakeAll();
    }

    /// <inheritdoc />
    public TranslationUse BeginUse() => _mmu.BeginUse();

    /// <inheritdoc />
    public TranslationResult Translate(TranslationUse use, ushort asid, ulong address, Access access)
    {
        if (Volatile.Read(ref _gateCountdown) >= 0)
            PassGate();
        if (asid != 0)
            return _mmu.Translate(use, asid, address, access);
        // Bypass still goes page by page (a bus translation would cover the whole range at once), so the gate and
        // the engine's reset points see every page.
        var t = _bus.Translate(TranslationUse.Untracked, 0, address, access);
        return t.IsOk ? t with { Length = Math.Min(t.Length, 4096 - (address & 4095)) } : t;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Through the MMU, as the device's MMU answers (the following pages it holds join the run), except while the gate
    /// is armed: then page by page, so that the gate counts pages.
    /// </remarks>
    public TranslationResult TranslateRun(TranslationUse use, ushort asid, ulong address, Access access, ulong maxLength) =>
        asid != 0 && Volatile.Read(ref _gateCountdown) < 0
            ? _mmu.TranslateRun(use, asid, address, access, maxLength)
            : Translate(use, asid, address, access);

    /// <inheritdoc />
    public void EndUse(TranslationUse use) => _mmu.EndUse(use);

    // Runs on the engine's worker thread; may sleep while the gate holds.
    private void PassGate()
    {
        if (Interlocked.Decrement(ref _gateCountdown) != -1)
            return;
        Volatile.Write(ref _gateHeld, 1);
        _gateQueue.WaitUntil(this, static t => Volatile.Read(ref t._gateReleased) != 0);
        Volatile.Write(ref _gateHeld, 0);
    }
}
