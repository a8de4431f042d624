"""The emulated electrolyte station (after BIG-MAP's ASAB at Helmholtz-Institute Münster):
mixes formulations from stock solutions and measures their conductivity in a two-electrode
cell by impedance spectroscopy.

Ground truth: the 3,626 conductivities measured by the real station (``bigmap.data.load_hte``;
E. Flores et al., Digital Discovery 1 (2022) 440, doi:10.1039/D2DD00027J; the experiments:
F. Rahmanian et al., Sci. Data 10 (2023) 43, doi:10.1038/s41597-023-01936-3), smoothly
interpolated in composition and temperature: a thin-plate-spline radial basis function of
ln κ over (r, c, T) (scipy ``RBFInterpolator``, smoothing 1e-3 on scaled coordinates; its
error on 400 held-out measurements is about 6 %, the scatter of the data).

What a measurement does, and what it costs in emulated time:

1. mixing (``electrolyte/flow``): four stock solutions (EC/EMC and PC/EMC 3:7 by mass, each
   without salt and with 2.2 mol/kg LiPF6) dosed by mass on a balance with a relative error of
   0.3 % per dose (``dosing_error``); the prepared formulation is computed from the masses
   actually dosed. Densities (g/cm³, 25 °C) to turn the requested volume into masses: EC
   1.321, PC 1.204, EMC 1.006 (manufacturers' data sheets, e.g. Sigma-Aldrich 676802,
   310328, 754935), LiPF6 solutions from the mass balance assuming ideal volumes with a
   partial molar volume of LiPF6 of 60 cm³/mol (an assumption stated here, not a measured
   value). 60 s per dose plus 30 s per mL.
2. temperature equilibration: 120 s + 60 s per kelvin of change; the cell then sits at the
   set point with a Gaussian offset of σ = 0.05 K (``temperature_noise``).
3. impedance spectra (``replicates``, default 3), 1 MHz to 1 Hz, 10 points per decade, from the
   equivalent circuit of a two-electrode cell with blocking electrodes:
   ``L_lead - R_lead - (R_bulk || C_geo) - CPE_dl`` with R_bulk = K / κ, C_geo = ε0 εr / K
   (εr = 20), L_lead = 0.2 µH, R_lead = 0.30 Ω, CPE_dl Q = 1e-5 F s^(α−1), α = 0.90; Gaussian
   noise of ``eis_noise`` (0.3 %) of |Z| on the real and imaginary parts. Each spectrum is
   written as an EC-Lab PEIS text export (.mpt) and attached to the result.
4. analysis as a lab does it: the spectrum is fitted (impedance.py, ``L0-R0-CPE0``) and the
   bulk resistance is the fitted series resistance minus the lead resistance; κ = K / R_bulk
   with the cell constant K from the last calibration. The replicates must agree within 3 %;
   otherwise the measurement fails (a gas bubble in the cell does exactly this).

Calibration (``Calibrate``): the lead resistance from a shorted cell, then the cell constant
from a 0.01 mol/L KCl standard of 0.1413 S/m at 25 °C (ISO 7888:1985, table 1); the true cell
constant of the emulated cell is 100 m⁻¹ times a manufacturing factor (σ = 2 %) seeded by the
serial number. Calibrations expire after ``calibration_interval`` measurements.

Failures (a few percent, configurable): a gas bubble in one replicate (``bubble_rate`` per
spectrum; the bulk resistance rises 1.5-3 times), and a thermostat or pump fault
(``fault_rate`` per measurement). Both fail the request with the reason.
"""

from __future__ import annotations

import math
import threading
import uuid
import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from bigmap.schemas import formulation as fm
from bigmap.tenants.lab.instrument import (
    Calibration,
    Command,
    CommandRejected,
    CommandResult,
    EmulatedClock,
    Instrument,
    InstrumentFault,
    Progress,
    RawFile,
    utcnow_iso,
)

EPS0 = 8.8541878128e-12  # F/m (CODATA 2018)
KCL_STANDARD = {"name": "KCl 0.01 mol/L", "kappa": 0.1413, "temperature": 298.15}  # ISO 7888
DENSITY = {"EC": 1.321, "PC": 1.204, "EMC": 1.006}  # g/cm3 at 25 °C (module docstring)
LIPF6_PARTIAL_MOLAR_VOLUME = 60.0  # cm3/mol (assumption, module docstring)
STOCK_MOLALITY = 2.2  # mol/kg


# ----------------------------------------------------------------------------- ground truth


class GroundTruth:
    """κ(r, c, T) [S/m] interpolated from the HTE measurements."""

    def __init__(self) -> None:
        from scipy.interpolate import RBFInterpolator

        from bigmap.data import load_hte

        d = load_hte()
        self._x = self._scale(d["r"].to_numpy(), d["c"].to_numpy(), d["T"].to_numpy())
        self._rc = self._x[:, :2]
        self._f = RBFInterpolator(
            self._x, np.log(d["kappa"].to_numpy()), kernel="thin_plate_spline", smoothing=1e-3
        )

    @staticmethod
    def _scale(r: Any, c: Any, t: Any) -> np.ndarray:
        return np.c_[
            np.asarray(r, float), np.asarray(c, float) / 2.2, (np.asarray(t, float) - 243.15) / 90.0
        ]

    def check(self, r: float, c: float, temperature: float) -> None:
        """``ValueError`` outside what the station's data cover."""
        (r0, r1), (c0, c1), (t0, t1) = fm.HTE_R_RANGE, fm.HTE_C_RANGE, fm.HTE_T_RANGE
        if not (r0 - 1e-9 <= r <= r1 + 1e-9):
            raise ValueError(
                f"r = {r:.3f} (PC share of the cyclic carbonates) is outside {r0}-{r1}"
            )
        if not (c0 - 1e-9 <= c <= c1 + 1e-9):
            raise ValueError(f"LiPF6 molality {c:.3f} mol/kg is outside {c0}-{c1} mol/kg")
        if not (t0 - 1e-9 <= temperature <= t1 + 1e-9):
            raise ValueError(f"temperature {temperature} K is outside {t0}-{t1} K")
        q = self._scale(r, c, 0)[0, :2]
        if np.min(np.linalg.norm(self._rc - q, axis=1)) > 0.12:
            raise ValueError(
                f"(r = {r:.3f}, c = {c:.3f} mol/kg) is too far from any measured blend"
            )

    def kappa(self, r: float, c: float, temperature: float) -> float:
        return float(np.exp(self._f(self._scale(r, c, temperature))[0]))


_truth: GroundTruth | None = None
_truth_lock = threading.Lock()


def ground_truth() -> GroundTruth:
    global _truth
    with _truth_lock:
        if _truth is None:
            _truth = GroundTruth()
        return _truth


# ----------------------------------------------------------------------------- impedance


def frequencies() -> np.ndarray:
    return np.logspace(6, 0, 61)


def cell_impedance(
    f: np.ndarray,
    r_bulk: float,
    k_cell: float,
    r_lead: float = 0.30,
    l_lead: float = 2e-7,
    q_dl: float = 1e-5,
    alpha: float = 0.90,
    eps_r: float = 20.0,
) -> np.ndarray:
    """Z(f) [Ω] of the two-electrode cell (module docstring)."""
    w = 2 * np.pi * f
    c_geo = EPS0 * eps_r / k_cell
    z_bulk = r_bulk / (1 + 1j * w * r_bulk * c_geo)
    z_cpe = 1.0 / (q_dl * (1j * w) ** alpha)
    return 1j * w * l_lead + r_lead + z_bulk + z_cpe


def fit_series_resistance(f: np.ndarray, z: np.ndarray) -> tuple[float, float, float]:
    """Fit ``L0-R0-CPE0`` (impedance.py); returns (R0 [Ω], its standard error, relative RMS
    residual of the fit)."""
    from impedance.models.circuits import CustomCircuit

    r_guess = float(np.min(z.real))
    circuit = CustomCircuit("L0-R0-CPE0", initial_guess=[1e-7, max(r_guess, 1e-3), 1e-5, 0.9])
    circuit.fit(
        f,
        z,
        bounds=([0, 0, 1e-9, 0.5], [1e-4, np.inf, 1.0, 1.0]),
        weight_by_modulus=True,
    )
    pred = circuit.predict(f)
    resid = float(np.sqrt(np.mean(np.abs(pred - z) ** 2 / np.abs(z) ** 2)))
    err = circuit.conf_[1] if circuit.conf_ is not None else float("nan")
    return float(circuit.parameters_[1]), float(err), resid


def mpt_peis(f: np.ndarray, z: np.ndarray, *, title: str, t0: float = 0.0) -> bytes:
    """A PEIS spectrum in the layout of an EC-Lab text export (.mpt)."""
    cols = [
        "freq/Hz",
        "Re(Z)/Ohm",
        "-Im(Z)/Ohm",
        "|Z|/Ohm",
        "Phase(Z)/deg",
        "time/s",
        "<Ewe>/V",
        "<I>/mA",
        "cycle number",
    ]
    lines = [
        "EC-Lab ASCII FILE",
        "Nb header lines : 5",
        "",
        f"Potentio Electrochemical Impedance Spectroscopy ({title})",
        "\t".join(cols),
    ]
    t = t0
    for fi, zi in zip(f, z, strict=True):
        t += max(2.0 / fi, 0.1)
        lines.append(
            "\t".join(
                f"{x:.7E}"
                for x in (
                    fi,
                    zi.real,
                    -zi.imag,
                    abs(zi),
                    math.degrees(math.atan2(zi.imag, zi.real)),
                    t,
                    0.0,
                    0.0,
                )
            )
            + "\t0"
        )
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def read_peis(content: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, Z) from an EC-Lab PEIS text export."""
    text = content.decode("latin-1").splitlines()
    n = int(text[1].split(":")[1])
    header = text[n - 1].split("\t")
    data = np.array(
        [[float(x.replace(",", ".")) for x in ln.split("\t")] for ln in text[n:] if ln.strip()]
    )
    fcol, re_col, im_col = (
        header.index("freq/Hz"),
        header.index("Re(Z)/Ohm"),
        header.index("-Im(Z)/Ohm"),
    )
    return data[:, fcol], data[:, re_col] - 1j * data[:, im_col]


# ----------------------------------------------------------------------------- commands


class Prepare(Command):
    command: str = "prepare"
    formulation: list[dict[str, Any]] = Field(min_length=1)
    volume_ml: float = Field(gt=0, le=50)


class MeasureConductivity(Command):
    command: str = "measure_conductivity"
    formulation: list[dict[str, Any]] = Field(min_length=1)
    temperature: float = Field(description="K")
    replicates: int = Field(default=3, ge=1, le=10)
    sample: str = ""


class Calibrate(Command):
    command: str = "calibrate"


@dataclass
class StationConfig:
    time_scale: float = 0.0
    dosing_error: float = 0.003
    temperature_noise: float = 0.05
    eis_noise: float = 0.003
    bubble_rate: float = 0.01
    fault_rate: float = 0.01
    replicate_tolerance: float = 0.03
    calibration_interval: int = 200
    seed: int | None = None


class EmulatedElectrolyteStation(Instrument):
    """An emulated ASAB-like station (see the module docstring)."""

    kind: ClassVar[str] = "electrolyte_station"
    commands: ClassVar[dict[str, type[Command]]] = {
        "prepare": Prepare,
        "measure_conductivity": MeasureConductivity,
        "calibrate": Calibrate,
    }
    emulated: ClassVar[bool] = True

    def __init__(
        self,
        name: str = "virtual-asab",
        *,
        serial: str = "ASAB-EMU-0001",
        config: StationConfig | None = None,
    ) -> None:
        super().__init__(name, serial=serial, firmware="bigmap-emulator")
        self.config = config or StationConfig()
        self.clock = EmulatedClock(self.config.time_scale)
        self.rng = np.random.default_rng(self.config.seed)
        # a stable seed per serial number (str hashes change from one process to the next)
        serial_rng = np.random.default_rng(zlib.crc32(serial.encode()))
        self._k_true = 100.0 * (1 + 0.02 * serial_rng.standard_normal())  # m^-1
        self._r_lead_true = 0.30
        self._t_now = 298.15
        self._lock_rng = threading.Lock()

    def _describe(self) -> dict[str, Any]:
        c = self.config
        return {
            "make": "bigmap",
            "model": "emulated electrolyte station (ASAB-like)",
            "emulator": {
                "ground_truth": "HTE conductivities (Flores et al. 2022) interpolated by a "
                "thin-plate-spline RBF in (r, c, T)",
                "equivalent_circuit": "L-R-(R||C)-CPE, blocking electrodes",
                "fit_circuit": "L0-R0-CPE0 (impedance.py)",
                "dosing_error": c.dosing_error,
                "temperature_noise_K": c.temperature_noise,
                "eis_noise": c.eis_noise,
                "bubble_rate": c.bubble_rate,
                "fault_rate": c.fault_rate,
                "time_scale": c.time_scale,
                "emulated_time_s": round(self.clock.elapsed_s, 3),
            },
        }

    def _connect(self) -> None:
        ground_truth()
        if "cell_constant" not in self.calibrations:
            self._calibrate(lambda f, m: None)

    # ------------------------------------------------------------------ physics helpers

    def _spectrum(self, r_bulk: float, bubble: bool = False) -> tuple[np.ndarray, np.ndarray]:
        f = frequencies()
        if bubble:
            r_bulk *= self.rng.uniform(1.5, 3.0)
        z = cell_impedance(f, r_bulk, self._k_true, self._r_lead_true)
        noise = self.config.eis_noise * np.abs(z)
        z = z + self.rng.normal(0, 1, z.shape) * noise + 1j * self.rng.normal(0, 1, z.shape) * noise
        return f, z

    def _calibrate(self, progress: Progress) -> CommandResult:
        files = []
        # the lead resistance with the electrodes shorted
        f = frequencies()
        z_short = 1j * 2 * np.pi * f * 2e-7 + self._r_lead_true
        z_short = z_short + self.rng.normal(0, 0.002, f.shape)
        r_lead = float(np.median(z_short.real))
        self.clock.spend(
            120 + 60 * abs(self._t_now - KCL_STANDARD["temperature"]),
            progress,
            "thermostat to 25 °C",
        )
        self._t_now = KCL_STANDARD["temperature"]
        r_std_true = self._k_true / KCL_STANDARD["kappa"]
        fz, z = self._spectrum(r_std_true)
        r0, r0_err, resid = fit_series_resistance(fz, z)
        self.clock.spend(90, progress, "calibration spectrum")
        k = KCL_STANDARD["kappa"] * (r0 - r_lead)
        now = utcnow_iso()
        self.calibrations["cell_constant"] = Calibration(
            quantity="cell constant",
            value=k,
            unit="1/m",
            uncertainty=abs(KCL_STANDARD["kappa"] * r0_err) if math.isfinite(r0_err) else None,
            method="impedance fit L0-R0-CPE0 of a standard solution",
            standard=KCL_STANDARD["name"] + " (0.1413 S/m at 25 °C, ISO 7888)",
            performed_at=now,
            valid_for_measurements=self.config.calibration_interval,
        )
        self.calibrations["lead_resistance"] = Calibration(
            quantity="lead resistance",
            value=r_lead,
            unit="ohm",
            uncertainty=0.002,
            method="shorted cell",
            performed_at=now,
        )
        files.append(
            RawFile("calibration_KCl.mpt", mpt_peis(fz, z, title="KCl 0.01 mol/L"), "text/plain")
        )
        return CommandResult(
            "calibrate",
            {"cell_constant": k, "lead_resistance": r_lead, "fit_residual": resid},
            files,
        )

    def _prepare(self, p: Prepare, progress: Progress) -> CommandResult:
        try:
            r, c = fm.formulation_to_hte(p.formulation)
            ground_truth().check(r, c, 298.15)
        except ValueError as exc:
            raise CommandRejected(
                f"the stock solutions cannot make this formulation: {exc}"
            ) from None
        # solvent share from the salty stocks and from the PC-based stocks (see docstring)
        f_salt = c / STOCK_MOLALITY
        w_ec, w_pc = fm.r_to_pc_share(r)  # r is a molar share, the stocks are dosed by mass
        stocks = {
            "EC/EMC 3:7": w_ec * (1 - f_salt),
            "PC/EMC 3:7": w_pc * (1 - f_salt),
            f"{STOCK_MOLALITY} mol/kg LiPF6 in EC/EMC 3:7": w_ec * f_salt,
            f"{STOCK_MOLALITY} mol/kg LiPF6 in PC/EMC 3:7": w_pc * f_salt,
        }
        m_salt_per_kg = STOCK_MOLALITY * fm.HTE_CHEMICALS["LiPF6"]["molar_mass"]  # kg/kg solvent
        # volume per kg of solvent in the mixture, ideal mixing (cm3)
        w_emc = fm.HTE_EMC_MASS_FRACTION
        v_solvent = 1000 * (
            (1 - w_emc) * (w_ec / DENSITY["EC"] + w_pc / DENSITY["PC"]) + w_emc / DENSITY["EMC"]
        )
        v_per_kg_solvent = v_solvent + c * LIPF6_PARTIAL_MOLAR_VOLUME
        kg_solvent = p.volume_ml / v_per_kg_solvent
        used = []
        dosed_solvent = {"EC": 0.0, "PC": 0.0, "EMC": 0.0}
        salt_mol = 0.0
        for name, share in stocks.items():
            solvent_kg = share * kg_solvent
            if solvent_kg <= 0:
                continue
            salty = "LiPF6" in name
            target_g = 1000 * solvent_kg * (1 + (m_salt_per_kg if salty else 0))
            with self._lock_rng:
                got_g = target_g * (1 + self.config.dosing_error * self.rng.standard_normal())
            solvent_got = got_g / 1000 / (1 + (m_salt_per_kg if salty else 0))
            cyc = "PC" if name.startswith(("PC", f"{STOCK_MOLALITY} mol/kg LiPF6 in PC")) else "EC"
            dosed_solvent[cyc] += solvent_got * (1 - w_emc)
            dosed_solvent["EMC"] += solvent_got * w_emc
            if salty:
                salt_mol += solvent_got * STOCK_MOLALITY
            used.append({"stock": name, "target_g": round(target_g, 5), "dosed_g": round(got_g, 5)})
            self.clock.spend(60 + 30 * p.volume_ml * share, progress, f"dosing {name}")
        moles = {
            k: v / fm.HTE_CHEMICALS[k]["molar_mass"] for k, v in dosed_solvent.items() if v > 0
        }
        if salt_mol > 0:
            moles["LiPF6"] = salt_mol
        prepared = fm.formulation_from_mole_fractions(moles)
        sample = f"S-{uuid.uuid4().hex[:10]}"
        return CommandResult(
            "prepare",
            {
                "sample": sample,
                "formulation": prepared,
                "requested": p.formulation,
                "volume_ml": p.volume_ml,
                "stock_solutions": used,
                "r": fm.formulation_to_hte(prepared)[0],
                "c": fm.formulation_to_hte(prepared)[1],
            },
        )

    def _measure(self, p: MeasureConductivity, progress: Progress) -> CommandResult:
        try:
            r, c = fm.formulation_to_hte(p.formulation)
            ground_truth().check(r, c, p.temperature)
        except ValueError as exc:
            raise CommandRejected(f"outside the station's range: {exc}") from None
        cal = self.calibrations.get("cell_constant")
        if cal is None or (
            cal.valid_for_measurements and cal.measurements_since >= cal.valid_for_measurements
        ):
            self._calibrate(progress)
            cal = self.calibrations["cell_constant"]
        r_lead = self.calibrations["lead_resistance"].value
        with self._lock_rng:
            if self.rng.random() < self.config.fault_rate:
                what = self.rng.choice(
                    [
                        f"thermostat did not settle at {p.temperature:.2f} K within 30 min",
                        "syringe pump stalled while filling the measuring cell",
                    ]
                )
                raise InstrumentFault(str(what))
            t_actual = p.temperature + self.config.temperature_noise * self.rng.standard_normal()
        self.clock.spend(120 + 60 * abs(self._t_now - p.temperature), progress, "equilibrating")
        self._t_now = p.temperature
        kappa_true = ground_truth().kappa(r, c, t_actual)
        r_true = self._k_true / kappa_true
        values, files, fits = [], [], []
        for k in range(p.replicates):
            with self._lock_rng:
                bubble = self.rng.random() < self.config.bubble_rate
                f, z = self._spectrum(r_true, bubble)
            self.clock.spend(60, progress, f"spectrum {k + 1}/{p.replicates}")
            r0, r0_err, resid = fit_series_resistance(f, z)
            r_bulk = r0 - r_lead
            if r_bulk <= 0:
                raise InstrumentFault(
                    f"replicate {k + 1}: fitted bulk resistance {r_bulk:.3g} Ω is not positive"
                )
            values.append(cal.value / r_bulk)
            fits.append(
                {
                    "R0_ohm": r0,
                    "R0_stderr_ohm": r0_err,
                    "R_bulk_ohm": r_bulk,
                    "relative_rms_residual": resid,
                }
            )
            files.append(
                RawFile(
                    f"{p.sample or 'sample'}_peis_{k + 1}.mpt",
                    mpt_peis(f, z, title=f"replicate {k + 1}, {p.temperature:.2f} K"),
                    "text/plain",
                )
            )
        cal.measurements_since += 1
        spread = (max(values) - min(values)) / float(np.mean(values))
        if spread > self.config.replicate_tolerance:
            raise InstrumentFault(
                f"the {p.replicates} replicate spectra disagree by {100 * spread:.1f} % "
                f"(more than {100 * self.config.replicate_tolerance:.0f} %): a gas bubble in the cell?"
            )
        mean = float(np.mean(values))
        sem = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
        rel_cal = (cal.uncertainty or 0.0) / cal.value
        unc = math.sqrt(sem**2 + (mean * rel_cal) ** 2)
        return CommandResult(
            "measure_conductivity",
            {
                "values": values,
                "mean": mean,
                "uncertainty": unc,
                "temperature": round(t_actual, 3),
                "set_temperature": p.temperature,
                "fits": fits,
                "cell_constant": cal.value,
                "lead_resistance": r_lead,
                "r": r,
                "c": c,
            },
            files,
        )

    def _run(self, command: Command, progress: Progress) -> CommandResult:
        if isinstance(command, Prepare):
            return self._prepare(command, progress)
        if isinstance(command, MeasureConductivity):
            return self._measure(command, progress)
        if isinstance(command, Calibrate):
            return self._calibrate(progress)
        raise CommandRejected(f"unknown command {command.command}")
