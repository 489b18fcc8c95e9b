package settings

import (
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/rotation"
)

// Visibility says who may see and set a setting's value.
//
// A read_only or hidden setting has one value for every installation (and
// every user): its default, fixed by the app developer. Organizations and
// users can neither set nor remove it (a write naming it is errs.Invalid),
// and Resolve always uses the developer's value, whatever rows are stored.
// Changing the fixed value changes it for every installation at once.
type Visibility string

const (
	// Editable settings are filled in by organizations or users; a default,
	// if any, applies while no value is stored. The zero Visibility ("")
	// of definitions made before visibility existed means Editable.
	Editable Visibility = "editable"
	// ReadOnly settings are shown in the install prompt and in the values
	// with their default, marked read-only. They cannot be secret: the
	// value is shown.
	ReadOnly Visibility = "read_only"
	// Hidden settings are never shown to organizations (not in the install
	// prompt, not in the values): the developer's value is only used in
	// templates. A hidden secret setting's value is sealed in the
	// definition itself (FixedSecret) and, like every secret value, is
	// write-only: responses say only that it is set.
	Hidden Visibility = "hidden"
	// Managed settings are written by Latchkey only: they receive the
	// tokens and mapped values of an OAuth config (for instance the
	// organization-level setting that holds a client-credentials token).
	// They are never in the install prompt, organizations and users
	// cannot set or remove them, and readers of the values are told only
	// whether one is set, as for secrets. They have no default and cannot
	// be required: no installer ever gives them.
	Managed Visibility = "managed"
)

// visibility returns d's visibility, Editable for the zero value.
func (d *Definition) visibility() Visibility {
	if d.Visibility == "" {
		return Editable
	}
	return d.Visibility
}

// Fixed reports whether d's value is fixed by the app developer (read_only
// or hidden), so that organizations and users cannot set it.
func (d *Definition) Fixed() bool {
	v := d.visibility()
	return v == ReadOnly || v == Hidden
}

// Managed reports whether only Latchkey writes d's values (see Managed).
func (d *Definition) Managed() bool { return d.visibility() == Managed }

// Prompted reports whether organizations see d when they install the app:
// hidden and managed settings are not theirs to see.
func (d *Definition) Prompted() bool {
	v := d.visibility()
	return v == Editable || v == ReadOnly
}

// sealsFixed reports whether d's developer value is kept sealed in
// FixedSecret rather than in DefaultValue.
func (d *Definition) sealsFixed() bool { return d.Secret && d.visibility() == Hidden }

// HasDefault reports whether d has a default or a sealed fixed value.
func (d *Definition) HasDefault() bool { return d.DefaultValue != nil || d.FixedSecret != nil }

// checkVisibility adds what is wrong with d's visibility to fs. A default
// of a secret setting is allowed only when it will be sealed (hidden).
func (d *Definition) checkVisibility(fs *errs.Fields) {
	switch d.visibility() {
	case Editable:
		if d.Secret && d.DefaultValue != nil {
			// Defaults are shown in the install prompt; a secret one would leak.
			fs.Add("default", "a secret setting cannot have a default unless it is hidden")
		}
	case ReadOnly, Hidden:
		if d.Secret && d.visibility() == ReadOnly {
			fs.Add("visibility", "a secret setting cannot be read_only: read_only values are shown; make it hidden")
		}
		if !d.HasDefault() {
			fs.Add("default", "is required: a %s setting's value is its default, fixed by the app developer", d.visibility())
		}
	case Managed:
		if d.DefaultValue != nil {
			fs.Add("default", "a managed setting cannot have a default: Latchkey writes its value")
		}
		if d.Required {
			fs.Add("required", "a managed setting cannot be required: installers never give its value")
		}
	default:
		fs.Add("visibility", `must be "editable", "read_only", "hidden" or "managed"`)
	}
}

// dropValues deletes the values stored for d, which is becoming read_only
// or hidden (to), if deleteValues; if values are stored and deleteValues is
// false it is errs.Conflict, as for DeleteDefinition.
func (s *Store) dropValues(d Definition, to Visibility, deleteValues bool) error {
	n, err := s.countValues(d)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if !deleteValues {
		return &errs.Error{Code: errs.Conflict,
			Message: fmt.Sprintf("setting %q has %d stored value(s), which a %s setting never uses; change it with ?delete_values=true to delete them too", d.Key, n, to),
			Fields:  []errs.FieldError{{Field: "visibility", Message: "cannot change while values are stored, unless delete_values=true"}}}
	}
	return s.db.Where("key = ? AND installation_id IN (?)", d.Key, installationsOf(s.db, d.AppID)).
		Delete(valueModel(d.Level)).Error
}

// definitionAAD names the definition a sealed fixed value belongs to, so it
// opens for no other app or key. App ids and keys hold no ':'.
func definitionAAD(appID, key string) string { return "definition:" + appID + ":" + key }

// sealFixed moves the plaintext developer value of a hidden secret setting
// from DefaultValue into FixedSecret, sealed; for any other setting it drops
// FixedSecret. It runs after Validate, which checked the plaintext.
func (s *Store) sealFixed(d *Definition) error {
	if !d.sealsFixed() {
		d.FixedSecret = nil
		return nil
	}
	if d.DefaultValue == nil {
		return nil // keeps the sealed value it has
	}
	sealed, err := s.cipher.Seal(*d.DefaultValue, definitionAAD(d.AppID, d.Key))
	if err != nil {
		return err
	}
	d.FixedSecret, d.DefaultValue = &sealed, nil
	return nil
}

// fixedValue returns the developer's value of a read_only or hidden
// setting, decrypted. ok is false when there is none. An undecryptable
// sealed value is an errs.Internal error naming the setting.
func (s *Store) fixedValue(d Definition) (v string, ok bool, err error) {
	switch {
	case d.FixedSecret != nil:
		v, err := s.cipher.Open(*d.FixedSecret, definitionAAD(d.AppID, d.Key))
		if err != nil {
			return "", false, errs.Wrap(errs.Internal, err, "the fixed value of setting %q cannot be decrypted", d.Key)
		}
		return v, true, nil
	case d.DefaultValue != nil:
		return *d.DefaultValue, true, nil
	}
	return "", false, nil
}

// FixedSecretColumn is where settings keeps the sealed developer values of
// hidden secret settings, for a rotation.Rotator; each is bound to its app
// and key as sealFixed seals it. (app_id, key) is unique.
func FixedSecretColumn() rotation.Column {
	return rotation.Column{
		Table: "setting_definitions", Keys: []string{"app_id", "key"}, Value: "fixed_secret",
		Where: "fixed_secret IS NOT NULL",
		AAD:   func(k []string) string { return definitionAAD(k[0], k[1]) },
	}
}

// deleteValuesParam reads the delete_values query parameter of the routes
// that may delete stored values.
func deleteValuesParam(c echo.Context) (bool, error) {
	switch c.QueryParam("delete_values") {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, errs.New(errs.BadRequest, `query parameter delete_values must be "true" or "false"`)
}
