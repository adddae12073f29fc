using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Memory;

namespace HmmEmu.Hardware.Tests.Dma;

public sealed class DmaTranslationUseTests
{
    [Fact]
    public void Copy_MultiPageTransfer_HoldsOneUseUntilTheLastByteMovedAndBeforeTheCompletion()
    {
        FakeTranslator? translator = null;
        using var rig = DmaRig.Create(translator: _ => translator = new FakeTranslator(), options: new DmaEngineOptions { ChargeQuantumBytes = 4096 });
        ulong src = rig.Alloc(8), dst = rig.Alloc(8);
        const ulong va = 0x100_0000;
        const int length = 6 * 4096;
        translator!.Map(va, Aperture.System, src, 8);
        translator.Map(va + 0x10_0000, Aperture.System, dst, 8);
        rig.Fill(src, length, i => (byte)(i + 3));
        bool allMovedAtEnd = false;
        uint postedAtEnd = uint.MaxValue;
        translator.OnEndUse = () =>
        {
            allMovedAtEnd = rig.Read(dst, length).AsSpan().SequenceEqual(rig.Read(src, length));
            postedAtEnd = rig.Engine.Completion.Producer;
        };

        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(va, va + 0x10_0000, length, cookie: 1));
            rig.WaitForCompletions(1);
        });

        Assert.Equal(1, translator.Begun);
        Assert.Equal(1, translator.Ended);
        Assert.True(allMovedAtEnd);
        Assert.Equal(0u, postedAtEnd);
        Assert.Equal(0, translator.TranslationsOutsideUse);
        Assert.Equal(12, translator.Translations); // once per page, per side
    }

    [Fact]
    public void Copy_Fault_EndsTheUse()
    {
        FakeTranslator? translator = null;
        using var rig = DmaRig.Create(translator: _ => translator = new FakeTranslator());
        rig.Run(() =>
        {
            rig.Submit(DmaDescriptor.Copy(0x1000, 0x2000, 64, cookie: 1)); // nothing mapped
            rig.WaitForCompletions(1);
        });

        Assert.Equal(translator!.Begun, translator.Ended);
        Assert.Equal(0, translator.ActiveSlot);
    }
}
